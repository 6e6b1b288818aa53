// A real OpenID provider for bastion's end-to-end tests: the certified oidc-provider,
// listening on 127.0.0.1 only. Usage: node provider.js PORT
// Client "bastion": public (PKCE required), native (any loopback redirect port), code
// and device flows. Accounts: any login name signs in (devInteractions, password
// ignored); their groups come from GROUPS below. Prints "ready ISSUER" when listening.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const GROUPS = { alice: ['ops'], bob: ['dba'], mallory: ['interns'] };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bastion',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
    },
  ],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // the ID token itself carries the scopes' claims
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id,
          email: `${id}@example.com`,
          groups: GROUPS[id] || [],
        };
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
