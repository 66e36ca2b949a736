// A Node app written the way the classic PM2 guide writes one: an HTTP server with /health,
// process.send('ready') once listening, and SIGINT closing the server so in-flight requests finish.
// A file named BEHAVIOR in the release makes it misbehave on purpose, for the failure tests:
//   exit               exits at start
//   never-ready        listens but never says ready
//   unhealthy-after-2s /health answers 500 two seconds after start
//   ignore-port        listens on a port of its own choosing instead of $PORT
const http = require('http');
const fs = require('fs');
const path = require('path');

const read = (name) => { try { return fs.readFileSync(path.join(__dirname, name), 'utf8').trim(); } catch { return ''; } };
const version = read('VERSION') || 'unknown';
const behavior = read('BEHAVIOR');
const started = Date.now();

if (behavior === 'exit') {
  console.error('refusing to start (BEHAVIOR=exit)');
  process.exit(3);
}

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    const sick = behavior === 'unhealthy-after-2s' && Date.now() - started > 2000;
    res.statusCode = sick ? 500 : 200;
    res.end(sick ? 'sick\n' : 'ok\n');
    return;
  }
  if (req.url.startsWith('/slow')) {
    setTimeout(() => res.end(`hello from ${version} (slow, pid ${process.pid})\n`), 5000);
    return;
  }
  res.end(`hello from ${version} (pid ${process.pid})\n`);
});

const port = behavior === 'ignore-port' ? 0 : Number(process.env.PORT || 3000);
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}, version ${version}`);
  if (behavior !== 'never-ready' && process.send) process.send('ready');
});

process.on('SIGINT', () => {
  console.log('SIGINT: closing');
  server.close(() => process.exit(0));
});
