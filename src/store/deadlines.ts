// Deadlines of in-flight calls that all share one timeout. A timer per call (setTimeout and
// clearTimeout, plus a Promise.race) cost a few µs on every request; here calls join a FIFO,
// which is in deadline order because the timeout is the same for all, and one timer, set for
// the oldest call's deadline, serves them all. Redis answers a connection's calls in order, so
// settled calls leave from the head at once and entries die young.

interface Entry {
  readonly deadline: number
  expire: (() => void) | undefined
  next: Entry | undefined
}

export type Deadline = Entry

export class DeadlineQueue {
  readonly #timeoutMs: number
  readonly #now: () => number
  #head: Entry | undefined
  #tail: Entry | undefined
  #timer: NodeJS.Timeout | undefined
  #timerAt = 0

  constructor (timeoutMs: number, now: () => number = Date.now) {
    this.#timeoutMs = timeoutMs
    this.#now = now
  }

  /** Calls `expire` once the timeout has passed, unless `settle` came first. */
  add (expire: () => void): Deadline {
    const entry: Entry = { deadline: this.#now() + this.#timeoutMs, expire, next: undefined }
    if (this.#tail === undefined) this.#head = entry
    else this.#tail.next = entry
    this.#tail = entry
    if (this.#timer === undefined) this.#arm(entry.deadline)
    return entry
  }

  settle (entry: Deadline): void {
    entry.expire = undefined
    while (this.#head !== undefined && this.#head.expire === undefined) this.#shift()
  }

  /** Calls waiting, settled ones not yet dropped included (tests). */
  get size (): number {
    let count = 0
    for (let entry = this.#head; entry !== undefined; entry = entry.next) count++
    return count
  }

  #shift (): void {
    this.#head = this.#head!.next
    if (this.#head === undefined) this.#tail = undefined
  }

  #arm (at: number): void {
    this.#timerAt = at
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, at - this.#now()))
    // The deadlines of calls in flight must not keep a closing process alive.
    this.#timer.unref()
  }

  #fire (): void {
    this.#timer = undefined
    const now = this.#now()
    while (this.#head !== undefined && (this.#head.expire === undefined || this.#head.deadline <= now)) {
      const expire = this.#head.expire
      this.#head.expire = undefined
      this.#shift()
      expire?.()
    }
    if (this.#head !== undefined) this.#arm(this.#head.deadline)
  }

  /** For tests: when the one timer is due, or undefined when none is set. */
  get timerDueAt (): number | undefined {
    return this.#timer === undefined ? undefined : this.#timerAt
  }
}
