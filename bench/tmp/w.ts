import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { FsBlockstore } from '../../src/store/blockstore.ts'
import { cidOf, RAW_CODE } from '../../src/content/cid.ts'
const MiB = 1 << 20
const bufs = Array.from({ length: 1024 }, (_, i) => { const b = randomBytes(MiB); return b })
const cids = bufs.map(b => cidOf(RAW_CODE, b))
for (const conc of [1, 4, 8]) {
  await fs.rm('/tmp/wstore', { recursive: true, force: true })
  const bs = new FsBlockstore('/tmp/wstore', { quotaBytes: Infinity, sync: false })
  await bs.open()
  let t = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: conc }, async () => { while (next < 1024) { const i = next++; await bs.put(cids[i], bufs[i]) } }))
  console.log('conc', conc, 'put 1 GiB', (performance.now() - t).toFixed(0), 'ms')
  t = performance.now()
  await Promise.all(Array.from({ length: 1024 }, (_, i) => fs.writeFile(`/tmp/wstore/plain-${i}`, bufs[i])))
  console.log('  plain writeFile all at once', (performance.now() - t).toFixed(0), 'ms')
}
