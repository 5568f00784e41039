import type { Owner } from './types.ts'

// The Redis key layout (docs/KEYS.md) in one place: the store, the rekey tool and the cipher
// binding all take their names from here. Every key of an owner carries the owner's hash tag,
// so that one owner's keys share one Cluster slot and each script touches one slot only:
//   session: {<session id>}        user: {u:<user id>}
// A session id is base64url and has no ':', so the two kinds of tag can never be equal.

/** The part of an owner's keys between the braces. A session's is its id, as it always was. */
export function ownerTag (owner: Owner): string {
  return owner.scope === 'session' ? owner.id : `u:${owner.id}`
}

/** The owner named by a hash tag, or undefined when the tag is not an owner's (`{rate}`, `{o:…}`). */
export function ownerOfTag (tag: string): Owner | undefined {
  if (tag.startsWith('u:')) return { scope: 'user', id: tag.slice(2) }
  return /^[A-Za-z0-9_-]+$/.test(tag) ? { scope: 'session', id: tag } : undefined
}

/**
 * An owner's attribute keys, in the order the scripts take them (prelude.lua): attributes
 * hash, expiry index, and for a session its deadline and tombstone. A user's attributes have
 * neither: no deadline, and no tombstone hides them (the user tombstone `:t` of a logout by
 * `sub` refuses tokens, not data).
 */
export function attributeKeys (prefix: string, owner: Owner): string[] {
  const base = `${prefix}{${ownerTag(owner)}}:`
  return owner.scope === 'session'
    ? [`${base}a`, `${base}x`, `${base}m`, `${base}t`]
    : [`${base}a`, `${base}x`]
}

/**
 * The record of an Idempotency-Key in the owner's slot: `key` is already a digest of the
 * client's key (attribute-service), so the name has a fixed length and carries no client text.
 */
export function idempotencyKey (prefix: string, owner: Owner, key: string): string {
  return `${prefix}{${ownerTag(owner)}}:i:${key}`
}

/**
 * An owner's event list (issue 16, events.lua), in the owner's slot; the sharded Pub/Sub channel
 * that carries the owner's events live has the same name. The scripts derive it from the
 * attributes hash (`…:a` -> `…:e`).
 */
export function eventKey (prefix: string, owner: Owner): string {
  return `${prefix}{${ownerTag(owner)}}:e`
}

/** The keys of a user's session index and user tombstone (the user's slot). */
export function userSessionKeys (prefix: string, userId: string): [index: string, tombstone: string] {
  const base = `${prefix}{u:${userId}}:`
  return [`${base}s`, `${base}t`]
}

/** A SCAN MATCH pattern for every owner's attribute hash under `prefix` (the prefix matched literally). */
export function attributeHashPattern (prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (char) => `\\${char}`)}{*}:a`
}

/** The owner of an attribute hash key, or undefined when the key is not one. */
export function ownerOfAttributeHash (prefix: string, key: string): Owner | undefined {
  if (!key.startsWith(`${prefix}{`) || !key.endsWith('}:a')) return undefined
  return ownerOfTag(key.slice(prefix.length + 1, -3))
}
