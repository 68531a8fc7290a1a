// dynalite's server, refusing what a web browser sends on another site's behalf: the same
// rule as txguard/moto_guard.py. dynalite answers every CORS preflight with
// Access-Control-Allow-Origin: * and accepts any signature, so without this any web page
// open in a local browser could read and write the tables; and a page served under a name
// that resolves to 127.0.0.1 (DNS rebinding) is same-origin. Requests whose Host is not a
// loopback name, or that carry an Origin at all, are refused (boto3 sends no Origin).
// Run by txguard/stack.py: node dynalite_guard.js DYNALITE_DIR HOST PORT DATA_PATH
'use strict'
const [dynaliteDir, host, port, path] = process.argv.slice(2)
const dynalite = require(dynaliteDir)
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]']

// Tables are ACTIVE at once (dynalite pretends 500 ms of CREATING by default).
const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
const handlers = server.listeners('request')
server.removeAllListeners('request')
server.on('request', (req, res) => {
  const hostHeader = req.headers.host || ''
  const name = hostHeader.endsWith(']') ? hostHeader : hostHeader.replace(/:[0-9]*$/, '')
  if (!LOOPBACK_NAMES.includes(name) || req.headers.origin !== undefined) {
    res.writeHead(403, { 'Content-Type': 'text/plain' })
    res.end('refused: a request from a web page, or to another host name\n')
    return
  }
  for (const handler of handlers) handler.call(server, req, res)
})
// A client killed mid-request (kill -9 of a service) must not take the endpoint down with it:
// an error nothing handled is written to the log (logs/dynalite.log) and the server goes on.
process.on('uncaughtException', (err) => console.error(`dynalite: uncaught ${err && err.stack ? err.stack : err}`))
// On SIGTERM: close the store (LevelDB) and exit, without waiting for idle keep-alive clients.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
server.listen(Number(port), host, () => console.log(`dynalite (guarded) listening on ${host}:${port}, data in ${path}`))
