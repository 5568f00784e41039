import { randomFillSync } from 'node:crypto'

// crypto.randomBytes makes one call into OpenSSL per use: about 3 us for 12 bytes here, paid
// by every request for its cid and by every encryption for its IV. Both come from a pool
// filled 4 KiB at a time instead (crypto.randomUUID caches its entropy the same way). The pool
// is never refilled in place, so bytes handed out are never handed out again nor changed.
const POOL_BYTES = 4096

let pool = Buffer.alloc(0)
let poolOffset = 0
let hexPool = ''
let hexOffset = 0

/** `size` cryptographically random bytes (a view on the pool: copy it to keep it long). */
export function randomBytesPooled (size: number): Buffer {
  if (size > POOL_BYTES / 4) return randomFillSync(Buffer.allocUnsafe(size))
  if (poolOffset + size > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_BYTES))
    poolOffset = 0
  }
  const bytes = pool.subarray(poolOffset, poolOffset + size)
  poolOffset += size
  return bytes
}

/** `size` cryptographically random bytes as lowercase hex (2 × size characters). */
export function randomHex (size: number): string {
  const length = size * 2
  if (size > POOL_BYTES / 4) return randomFillSync(Buffer.allocUnsafe(size)).toString('hex')
  if (hexOffset + length > hexPool.length) {
    hexPool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES)).toString('hex')
    hexOffset = 0
  }
  const hex = hexPool.slice(hexOffset, hexOffset + length)
  hexOffset += length
  return hex
}
