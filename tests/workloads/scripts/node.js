// node workload: an HTTP server and client on loopback, timers, fs and
// crypto. Prints "node: OK".
'use strict';
const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');

function fail(msg) {
  console.log('node: FAIL: ' + msg);
  process.exit(1);
}

const body = crypto.randomBytes(100000).toString('hex');
const server = http.createServer((req, res) => {
  let got = '';
  req.on('data', (c) => { got += c; });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(req.method + ' ' + req.url + ' ' + got.length);
  });
});

function request(opts, data) {
  return new Promise((resolve, reject) => {
    const req = http.request(opts, (res) => {
      let out = '';
      res.on('data', (c) => { out += c; });
      res.on('end', () => resolve([res.statusCode, out]));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    if (data) req.write(data);
    req.end();
  });
}

async function main() {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const reqs = [];
  for (let i = 0; i < 20; i++) {
    reqs.push(request({ host: '127.0.0.1', port, path: '/r' + i, method: 'POST', agent }, body));
  }
  const results = await Promise.all(reqs);
  results.forEach(([code, out], i) => {
    if (code !== 200 || out !== 'POST /r' + i + ' ' + body.length) fail('response ' + i + ': ' + code + ' ' + out);
  });
  // By name (getaddrinfo on libuv's thread pool); IPv4, as the server is.
  const [code, out] = await request({ host: 'localhost', family: 4, port, path: '/get' });
  if (code !== 200 || out !== 'GET /get 0') fail('GET via localhost: ' + code + ' ' + out);
  agent.destroy();
  await new Promise((resolve) => server.close(resolve));

  // Timers, the thread pool (fs, crypto), a child process.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-'));
  const f = path.join(dir, 'f');
  await fs.promises.writeFile(f, body);
  if ((await fs.promises.readFile(f, 'utf8')) !== body) fail('fs round trip');
  fs.renameSync(f, f + '2');
  fs.symlinkSync(f + '2', f);
  fs.chmodSync(f + '2', 0o600);
  const w = fs.watch(dir);
  w.close();
  fs.rmSync(dir, { recursive: true });
  const hash = await new Promise((resolve, reject) =>
    crypto.pbkdf2('pw', 'salt', 1000, 32, 'sha256', (e, k) => (e ? reject(e) : resolve(k.toString('hex')))));
  if (hash.length !== 64) fail('pbkdf2');
  if (execFileSync('echo', ['child']).toString() !== 'child\n') fail('child process');
  console.log('node: ' + process.version + ' served ' + results.length + ' requests');
  console.log('node: OK');
}

main().catch((e) => fail(e.stack));
