import { StoreRequestCodec, StoreResponseCodec } from '../../src/wire/store-messages.ts'
const b = StoreRequestCodec.encode({ put: { cid: new Uint8Array([1, 2]), data: new Uint8Array(5), replicas: 3 } })
console.log(b.length, StoreRequestCodec.decode(b))
console.log(StoreRequestCodec.decode(StoreRequestCodec.encode({ has: { cids: [new Uint8Array([9])] } })))
console.log(StoreResponseCodec.decode(StoreResponseCodec.encode({ statuses: [1, 8], message: '' })))
console.log(StoreResponseCodec.decode(new Uint8Array(0)))
