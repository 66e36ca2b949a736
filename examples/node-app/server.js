// A Node app written the way the classic PM2 guide writes one: an HTTP server with /health,
// process.send('ready') once listening, and SIGINT closing the server so in-flight requests finish.
// A file named BEHAVIOR in the release makes it misbehave on purpose, for the failure tests:
//   exit               exits at start
//   never-ready        listens but never says ready
//   unhealthy-after-2s /health answers 500 two seconds after start
//   ignore-port        listens on a port of its own choosing instead of $PORT
//   exit-instance-N    exits at start when it is instance N (NODE_APP_INSTANCE), for partial failures
//   error-500          healthy, but answers every other request with 500 (for blue-green's error-rate monitor)
//   crash-soon         exits 300 ms after saying ready, every time
//   leak-once          grows by 150 MB once per release (the first instance to start), for max_memory
//   ignore-sigint      ignores SIGINT and starts a child process, for kill_timeout and group kills
const http = require('http');
const fs = require('fs');
const path = require('path');

const read = (name) => { try { return fs.readFileSync(path.join(__dirname, name), 'utf8').trim(); } catch { return ''; } };
const version = read('VERSION') || 'unknown';
const behavior = read('BEHAVIOR');
const started = Date.now();

if (behavior === 'exit' || behavior === `exit-instance-${process.env.NODE_APP_INSTANCE}`) {
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
  if (req.url === '/headers') {
    // What the proxy told the app about the client (the forwarded-header tests read it).
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(req.headers));
    return;
  }
  if (req.url.startsWith('/slow')) {
    setTimeout(() => res.end(`hello from ${version} (slow, pid ${process.pid})\n`), 5000);
    return;
  }
  if (behavior === 'error-500') res.statusCode = 500;
  res.end(`hello from ${version} (pid ${process.pid})\n`);
});

// A minimal WebSocket handshake (no frames needed): the connection stays open until one side closes it,
// which is what the drain test watches.
server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  const accept = require('crypto').createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
               `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.on('error', () => {});
});

const port = behavior === 'ignore-port' ? 0 : Number(process.env.PORT || 3000);
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}, version ${version}`);
  if (behavior !== 'never-ready' && process.send) process.send('ready');
  // From the ready message, as the header says: timed from the start instead, a start slower than 300 ms (a loaded
  // machine) exited before it was ready, and the supervision test met a failed start rather than a crash.
  if (behavior === 'crash-soon') setTimeout(() => process.exit(1), 300);
});
const leaked = [];
if (behavior === 'leak-once' && !fs.existsSync(path.join(__dirname, 'LEAKED'))) {
  fs.writeFileSync(path.join(__dirname, 'LEAKED'), String(process.pid));
  setTimeout(() => { for (let i = 0; i < 150; i++) leaked.push(Buffer.alloc(1024 * 1024, 1)); }, 200);
}
if (behavior === 'ignore-sigint') {
  const child = require('child_process').spawn('sleep', ['1000'], { stdio: 'ignore' });
  fs.writeFileSync(path.join(__dirname, 'CHILD_PID'), String(child.pid));
  process.on('SIGINT', () => console.log('SIGINT: ignored'));
}

if (behavior !== 'ignore-sigint') process.on('SIGINT', () => {
  console.log('SIGINT: closing');
  server.close(() => process.exit(0));
  // Upgraded sockets are not tracked by server.close(); leave once in-flight work is done.
  setTimeout(() => process.exit(0), 6000).unref();
});
