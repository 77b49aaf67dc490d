// Kinesalite on 127.0.0.1 with a LevelDB store: its CLI binds every interface, its Node API does not.
// Usage: node kinesalite_server.js <port> <data-path> [--tls <key.pem> <cert.pem>]
'use strict'

const fs = require('fs')

function usage(msg) {
  console.error(msg + '\nusage: node kinesalite_server.js <port> <data-path> [--tls <key.pem> <cert.pem>]')
  process.exit(2)
}

const args = process.argv.slice(2)
const port = parseInt(args[0], 10)
const dataPath = args[1]
if (!(port > 0 && port < 65536)) usage('invalid port: ' + args[0])
if (!dataPath) usage('missing data path')

const options = {path: dataPath, createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100}
const tlsAt = args.indexOf('--tls')
if (tlsAt >= 0) {
  const keyPath = args[tlsAt + 1], certPath = args[tlsAt + 2]
  if (!keyPath || !certPath) usage('--tls needs <key.pem> <cert.pem>')
  options.ssl = true
  options.key = fs.readFileSync(keyPath)
  options.cert = fs.readFileSync(certPath)
  options.ca = options.cert
}

fs.mkdirSync(dataPath, {recursive: true})

let kinesalite
try {
  kinesalite = require('kinesalite')
} catch (e) {
  console.error('cannot load kinesalite (' + e.message + '); run: npm install --prefix .local/node kinesalite@3.3.3 ' +
    'and set NODE_PATH=.local/node/node_modules')
  process.exit(3)
}

const server = kinesalite(options)
server.on('error', function(err) {
  console.error('kinesalite failed: ' + (err.stack || err))
  process.exit(1)
})
server.listen(port, '127.0.0.1', function() {
  const a = server.address()
  console.log('Listening at %s://%s:%s (data %s)', options.ssl ? 'https' : 'http', a.address, a.port, dataPath)
})

function stop() {
  // Close LevelDB cleanly so the next start does not find a held LOCK.
  server.close(function() { process.exit(0) })
  setTimeout(function() { process.exit(0) }, 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
