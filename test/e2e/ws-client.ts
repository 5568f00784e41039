import WebSocket from 'ws'

// A JSON-RPC client over a real socket (the `ws` package) for the WebSocket API's tests.

export interface RpcMessage {
  jsonrpc: '2.0'
  id?: string | number | null
  result?: unknown
  error?: { code: number, message: string, data?: { error: number, errname: string, reason: string, sub_status: string[], details?: Array<{ path: string, message: string }> } }
  method?: string
  params?: Record<string, unknown>
}

export class RpcClient {
  readonly socket: WebSocket
  /** Every message received, in order (notifications and answers). */
  readonly received: unknown[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  #nextId = 1
  readonly #waiters: Array<{ match: (message: unknown) => boolean, resolve: (message: unknown) => void }> = []

  private constructor (socket: WebSocket) {
    this.socket = socket
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as unknown
      this.received.push(message)
      for (let index = 0; index < this.#waiters.length; index++) {
        const waiter = this.#waiters[index]!
        if (waiter.match(message)) {
          this.#waiters.splice(index, 1)
          waiter.resolve(message)
          break
        }
      }
    })
  }

  static async open (url: string, options: WebSocket.ClientOptions = {}): Promise<RpcClient> {
    const socket = new WebSocket(url, options)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
      socket.once('unexpected-response', (_request, response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => { body += chunk.toString() })
        response.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${response.statusCode}`), { statusCode: response.statusCode, body })))
      })
    })
    return new RpcClient(socket)
  }

  /** The next message that matches (already received ones included). */
  async next (match: (message: RpcMessage) => boolean, timeoutMs = 5000): Promise<RpcMessage> {
    const seen = this.received.find((message) => match(message as RpcMessage))
    if (seen !== undefined) {
      this.received.splice(this.received.indexOf(seen), 1)
      return seen as RpcMessage
    }
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no such message in time')), timeoutMs)
      this.#waiters.push({
        match: (message) => match(message as RpcMessage),
        resolve: (message) => {
          clearTimeout(timer)
          this.received.splice(this.received.indexOf(message), 1)
          resolve(message as RpcMessage)
        }
      })
    })
  }

  send (message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  async call (method: string, params?: unknown): Promise<RpcMessage> {
    const id = this.#nextId++
    this.send({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) })
    return await this.next((message) => message.id === id && !Array.isArray(message))
  }

  /** The result of a call that must succeed. */
  async result (method: string, params?: unknown): Promise<any> {
    const answer = await this.call(method, params)
    if (answer.error !== undefined) throw new Error(`${method}: ${JSON.stringify(answer.error)}`)
    return answer.result
  }

  async notification (method: string, match: (params: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return (await this.next((message) => message.method === method && match(message.params ?? {}))).params!
  }

  close (): void {
    this.socket.close()
  }
}
