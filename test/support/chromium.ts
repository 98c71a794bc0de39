import { execa } from 'execa';
import puppeteer, { type Browser } from 'puppeteer-core';
import { ensureDebianPackages } from '../../src/apply/host/packages.js';
import { createLogger } from '../../src/util/log.js';

/**
 * Installs Debian's chromium when missing and says where it is. On a fresh machine the install waits its turn
 * behind the suite's other apt installs (Keystone, Heat, Swift) and then downloads ~350 MB: a file calls this
 * from its beforeAll, whose timeout allows for that, not from inside a test.
 */
export async function ensureChromium(): Promise<string> {
  const found = await execa('sh', ['-c', 'command -v chromium'], { reject: false });
  if (found.exitCode !== 0) await ensureDebianPackages(['chromium'], createLogger());
  return String((await execa('sh', ['-c', 'command -v chromium'])).stdout).trim();
}

/**
 * Debian's chromium, driven headless through the DevTools protocol by puppeteer-core (which brings no browser
 * of its own): pages people look at (the crawl gallery) are tested in a real browser. Installed with apt-get
 * when missing (the `chromium` package: 290 MB installed, 356 MB with chromium-common, before the libraries it
 * pulls in), with apt-get as the other test components are.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = await ensureChromium();
  return puppeteer.launch({
    executablePath,
    headless: true,
    // root in a container has no user namespace for chromium's sandbox; the pages are the test's own
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    timeout: 20_000,
  });
}
