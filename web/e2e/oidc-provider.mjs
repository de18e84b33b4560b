// An OpenID Connect identity provider for the suite's external-IdP test:
// the OpenID-certified `oidc-provider` from npm, on loopback, with one
// confidential client (PKCE required) and accounts whose claims include
// groups. Its development login page accepts any password; the test
// drives it like a browser would.
//
//   node oidc-provider.mjs <port> <redirect_uri> <client_id> <client_secret>
//
// Prints "oidc-provider listening on <issuer>" once it answers.

import Provider from 'oidc-provider';

const [port, redirectUri, clientId, clientSecret] = process.argv.slice(2);
if (!port || !redirectUri || !clientId || !clientSecret) {
  console.error('usage: oidc-provider.mjs <port> <redirect_uri> <client_id> <client_secret>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// The people this provider knows; anyone else signs in with only `sub`.
const accounts = {
  carol: { name: 'Carol Park', email: 'carol@example.com', groups: ['Developers', 'Auditors'] },
  dave: { name: 'Dave Lee', email: 'dave@example.com', groups: [] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // The claims go in the ID token itself, which is what Seashell reads.
  conformIdTokenClaims: false,
  cookies: { keys: ['seashell-test-only-cookie-key'] },
  async findAccount(ctx, sub) {
    const known = accounts[sub] ?? {};
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, ...known };
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
