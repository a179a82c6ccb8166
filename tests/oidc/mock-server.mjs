// OIDC provider for dropops' sign-in tests: the npm package oauth2-mock-server, plus a small
// control port where a test sets the claims of the ID token issued for one authorization code.
//   node mock-server.mjs <provider-port> <control-port> <parent-pid>
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const [port, controlPort, parentPid] = process.argv.slice(2).map(Number);
const overrides = new Map();

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token, req) => {
  const claims = overrides.get(req.body?.code) ?? {};
  const now = Math.floor(Date.now() / 1000);
  Object.assign(token.payload, { auth_time: now, email: 'person@example.test', name: 'Test Person' }, claims);
  for (const [key, value] of Object.entries(claims)) {
    if (value === null) delete token.payload[key];
  }
});
await server.start(port, '127.0.0.1');
server.issuer.url = `http://127.0.0.1:${port}`;

http
  .createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      try {
        const { code, claims } = JSON.parse(body);
        overrides.set(code, claims);
        res.end('ok');
      } catch (e) {
        res.statusCode = 400;
        res.end(String(e));
      }
    });
  })
  .listen(controlPort, '127.0.0.1', () => console.log('ready'));

// Exit with the test process that started us.
setInterval(() => {
  try {
    process.kill(parentPid, 0);
  } catch {
    process.exit(0);
  }
}, 500);
