/**
 * Wire messages, defined by the .proto files beside this module and encoded
 * with protobufjs from those definitions (no generated code to keep in step).
 * The .proto files are copied next to the bundled daemon entry too
 * (src/swarm/daemon-bundle.ts), so they resolve the same from either place.
 */
import { readFileSync } from 'node:fs'
import protobuf from 'protobufjs'

/** A list of byte chunks (libp2p's Uint8ArrayList, structurally). */
interface ByteList {
  subarray: () => Uint8Array
}

export interface Codec<T> {
  encode: (message: T) => Uint8Array
  decode: (bytes: Uint8Array | ByteList) => T
}

const roots = new Map<string, protobuf.Root>()

/**
 * A .proto file by name beside this module (src/wire/), or by URL for one
 * that lives beside the module that defines its messages
 * (`new URL('x.proto', import.meta.url)`).
 */
export function protoRoot (file: string | URL): protobuf.Root {
  const url = typeof file === 'string' ? new URL(file, import.meta.url) : file
  let root = roots.get(url.href)
  if (root == null) {
    const text = readFileSync(url, 'utf8')
    root = protobuf.parse(text, { keepCase: true }).root
    roots.set(url.href, root)
  }
  return root
}

/**
 * A codec for one message type. Decoding checks the message against the
 * schema and turns missing fields into their defaults ([] , 0, '', empty
 * bytes), so handlers see complete objects.
 */
export function codecOf<T> (file: string | URL, type: string): Codec<T> {
  const message = protoRoot(file).lookupType(type)
  return {
    encode: (value) => message.encode(message.fromObject(value as Record<string, unknown>)).finish(),
    decode: (bytes) => {
      const flat = bytes instanceof Uint8Array ? bytes : bytes.subarray()
      return message.toObject(message.decode(flat), { defaults: true, arrays: true, enums: Number }) as T
    }
  }
}
