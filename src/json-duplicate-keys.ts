// JSON.parse keeps the last of two equal keys without a word, so `{"encrypt":true,"encrypt":false}`
// would store in clear a value the client also asked to encrypt. This finds such a key in a text
// that JSON.parse has already accepted, where every quote outside a string opens one.

const QUOTE = 34
const BACKSLASH = 92
const OPEN_OBJECT = 123
const CLOSE_OBJECT = 125
const OPEN_ARRAY = 91
const CLOSE_ARRAY = 93
const COMMA = 44
// Up to this many keys an object's keys are compared in a list (most objects are small, and a
// Set costs more to make than the comparisons); past it, a Set keeps large objects linear.
const LIST_KEYS = 8

interface Container {
  /** null for an array. */
  keys: string[] | null
  keySet: Set<string> | null
  /** Key in the parent object, or index in the parent array, that leads to this container. */
  segment: string
  index: number
  lastKey: string
  expectingKey: boolean
}

/** The JSON Pointer segment of a key (RFC 6901: `~` as `~0`, `/` as `~1`). */
export function pointerSegment (key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1')
}

function closingQuote (text: string, opening: number): number {
  let end = text.indexOf('"', opening + 1)
  for (;;) {
    let backslashes = 0
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return end
    end = text.indexOf('"', end + 1)
  }
}

/** Adds the key to the object's keys; false when it was there already. */
function addKey (object: Container, key: string): boolean {
  if (object.keySet !== null) {
    if (object.keySet.has(key)) return false
    object.keySet.add(key)
    return true
  }
  const keys = object.keys!
  if (keys.includes(key)) return false
  keys.push(key)
  if (keys.length > LIST_KEYS) object.keySet = new Set(keys)
  return true
}

/**
 * The JSON Pointer of the first key that repeats a key of the same object (compared after
 * unescaping, so `"a"` and `"\u0061"` are the same key), or null when there is none.
 * `text` must be valid JSON.
 */
export function duplicateKeyPointer (text: string): string | null {
  const stack: Container[] = []
  let top: Container | undefined
  const length = text.length
  for (let at = 0; at < length; at++) {
    const char = text.charCodeAt(at)
    if (char === QUOTE) {
      const end = closingQuote(text, at)
      if (top !== undefined && top.expectingKey) {
        const literal = text.slice(at + 1, end)
        const key = literal.includes('\\') ? JSON.parse(text.slice(at, end + 1)) as string : literal
        if (!addKey(top, key)) return pointerOf(stack, key)
        top.lastKey = key
        top.expectingKey = false
      }
      at = end
    } else if (char === OPEN_OBJECT || char === OPEN_ARRAY) {
      const segment = top === undefined ? '' : top.keys === null ? String(top.index) : top.lastKey
      const isObject = char === OPEN_OBJECT
      top = { keys: isObject ? [] : null, keySet: null, segment, index: 0, lastKey: '', expectingKey: isObject }
      stack.push(top)
    } else if (char === CLOSE_OBJECT || char === CLOSE_ARRAY) {
      stack.pop()
      top = stack[stack.length - 1]
    } else if (char === COMMA && top !== undefined) {
      if (top.keys === null) top.index++
      else top.expectingKey = true
    }
  }
  return null
}

function pointerOf (stack: Container[], key: string): string {
  let pointer = ''
  for (let depth = 1; depth < stack.length; depth++) pointer += `/${pointerSegment(stack[depth]!.segment)}`
  return `${pointer}/${pointerSegment(key)}`
}
