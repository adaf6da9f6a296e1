import { MemoryDatastore } from 'datastore-core/memory'
import { ContentStore } from '../../src/store/content-store.ts'
import fs from 'node:fs/promises'
const log = Object.assign((..._a: unknown[]) => {}, { error: console.error, trace: () => {}, enabled: false, newScope: () => log }) as any
for (let i = 0; i < 2; i++) {
  await fs.rm('/tmp/impstore', { recursive: true, force: true })
  const store = new ContentStore({ blocksDir: '/tmp/impstore', datastore: new MemoryDatastore() as any, quota: 'auto', sync: process.env.SYNC !== '0', log })
  await store.open()
  const cp = await import('node:child_process'); cp.execSync('sync')
  const t = performance.now()
  const cpu0 = process.cpuUsage()
  const r = await store.shareFile('/tmp/f1g', { writeConcurrency: Number(process.env.WC ?? 4) })
  const cpu = process.cpuUsage(cpu0)
  console.log(`cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (sys ${(cpu.system / 1e6).toFixed(2)}) sync ${process.env.SYNC} pool ${process.env.UV_THREADPOOL_SIZE ?? 4} wc ${process.env.WC ?? 4} share`, (performance.now() - t).toFixed(0), 'ms', r.cid.toString().slice(-6))
  await store.close()
}
