/**
 * The built-in demo website that `npm run demo` crawls, so the demo needs no internet: a small museum
 * catalogue of a few galleries, with images in the forms a crawler must handle (img src, srcset,
 * picture/source, og:image, relative and absolute URLs, a <base href>) and a robots.txt that keeps
 * crawlers out of /private/.
 */
export interface DemoPage {
  path: string;
  html: string;
}

const galleries = ['harbour', 'desert', 'alpine', 'reef', 'forest'];

function page(title: string, body: string, head = ''): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head><body><h1>${title}</h1>${body}</body></html>`;
}

export function demoPages(origin: string): DemoPage[] {
  const pages: DemoPage[] = [];
  const links = galleries.map((g) => `<li><a href="/gallery/${g}/">${g}</a></li>`).join('');
  pages.push({
    path: '/',
    html: page('Demo museum', `<p>Five galleries.</p><ul>${links}</ul><img src="/img/logo.svg" alt="museum logo"><a href="/private/staff.html">staff</a>`,
      `<meta property="og:image" content="${origin}/img/cover.svg">`),
  });
  galleries.forEach((gallery, index) => {
    const next = galleries[(index + 1) % galleries.length];
    pages.push({
      path: `/gallery/${gallery}/`,
      html: page(`Gallery: ${gallery}`, [
        `<img src="${gallery}-1.svg" alt="${gallery} one">`,
        `<img src="/img/${gallery}-2.svg" srcset="/img/${gallery}-2.svg 1x, /img/${gallery}-2@2x.svg 2x" alt="${gallery} two">`,
        `<picture><source srcset="${origin}/img/${gallery}-3.svg"><img src="/img/${gallery}-3-fallback.svg" alt="${gallery} three"></picture>`,
        `<img src="/img/logo.svg" alt="museum logo">`,
        `<a href="detail.html">details</a> <a href="/gallery/${next}/">next gallery</a> <a href="/">home</a>`,
      ].join('\n')),
    });
    pages.push({
      path: `/gallery/${gallery}/detail.html`,
      html: page(`${gallery}: details`, `<img src="detail.svg" alt="${gallery} detail"><a href="../">back</a>`,
        `<base href="${origin}/img/${gallery}/">`),
    });
  });
  pages.push({ path: '/private/staff.html', html: page('Staff only', '<img src="/img/secret.svg" alt="never crawled">') });
  return pages;
}

export const demoRobotsTxt = 'User-agent: *\nDisallow: /private/\n';

/** A tiny coloured SVG per image path, so the images are real files a browser can show. */
export function demoSvg(path: string): string {
  let hash = 0;
  for (const ch of path) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = hash % 360;
  const label = path.split('/').pop()?.replace(/\.svg$/, '') ?? '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="100"><rect width="160" height="100" fill="hsl(${hue},60%,55%)"/><text x="8" y="55" font-size="14" fill="#fff">${label}</text></svg>`;
}
