import { describe, expect, it } from 'vitest';
import { ansibleVaultViewCommand, pickVaultSecrets } from '../../../src/plan/vault-import.js';

const vault = { api_token: 's3cret-token', redis_password: 'p@ss word', db_port: 5432, smtp: { user: 'u', password: 'x' }, notes: ['a'], multi: 'one\ntwo' };
const declared = ['api_token', 'redis_password', 'db_port', 'smtp', 'notes', 'multi', 'not_in_vault'];

describe('secrets import --vault, as data', () => {
  it('opens the vault with ansible-vault view, with the password file when one is given', () => {
    expect(ansibleVaultViewCommand('/p/vault.yml')).toEqual(['ansible-vault', 'view', '/p/vault.yml']);
    expect(ansibleVaultViewCommand('/p/vault.yml', '/p/.vault-pass')).toEqual(['ansible-vault', 'view', '--vault-password-file', '/p/.vault-pass', '/p/vault.yml']);
  });

  it('takes the names asked for; a number becomes its text', () => {
    expect(pickVaultSecrets(vault, ['api_token', 'db_port'], declared)).toEqual({ values: [{ name: 'api_token', value: 's3cret-token' }, { name: 'db_port', value: '5432' }] });
  });

  it('takes every declared secret the vault holds when no name is given', () => {
    expect(pickVaultSecrets({ api_token: 't', other_var: 'not a secret of this app' }, [], ['api_token', 'redis_password'])).toEqual({ values: [{ name: 'api_token', value: 't' }] });
    expect(pickVaultSecrets({ other_var: 'x' }, [], ['api_token'])).toEqual({ refuse: 'the vault holds none of the secrets depl.yaml declares (api_token)' });
  });

  it('refuses undeclared names, absent variables, structures and multi-line values, naming variables and never values', () => {
    const refusals = [
      pickVaultSecrets(vault, ['api_token', 'stray'], declared),
      pickVaultSecrets(vault, ['not_in_vault'], declared),
      pickVaultSecrets(vault, ['smtp'], declared),
      pickVaultSecrets(vault, ['notes'], declared),
      pickVaultSecrets(vault, ['multi'], declared),
      pickVaultSecrets(['api_token'], [], declared),
    ];
    expect(refusals).toEqual([
      { refuse: `depl.yaml declares no secret named stray (declared: ${declared.join(', ')})` },
      { refuse: 'the vault has no variable not_in_vault' },
      { refuse: 'smtp in the vault is a mapping, not one value' },
      { refuse: 'notes in the vault is a list, not one value' },
      { refuse: 'the value of multi in the vault has a line break or NUL; a secret is one line' },
      { refuse: 'the vault does not hold variables (a YAML mapping of name: value)' },
    ]);
    expect(JSON.stringify(refusals)).not.toMatch(/s3cret|p@ss|one\\ntwo/);
  });
});
