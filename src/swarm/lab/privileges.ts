/**
 * Can this process build a lab? It creates network namespaces (`ip netns
 * add` bind-mounts them: CAP_SYS_ADMIN), veth pairs, bridges and qdiscs
 * (CAP_NET_ADMIN), so it needs Linux, both capabilities (root has them),
 * and iproute2's `ip` and `tc`. Checked before anything is made.
 */
import { readFile } from 'node:fs/promises'
import { LabUnavailableError } from './errors.ts'
import { run } from './ip.ts'

const CAP_NET_ADMIN = 12n
const CAP_SYS_ADMIN = 21n

/** Throws LabUnavailableError (exit 2) naming what is missing. */
export async function checkLabPrivileges (): Promise<void> {
  if (process.platform !== 'linux') {
    throw new LabUnavailableError(`swarm up --netns needs Linux network namespaces; this is ${process.platform}`)
  }
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '')
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1]
  const caps = hex != null ? BigInt(`0x${hex}`) : 0n
  const missing = [
    ...((caps >> CAP_NET_ADMIN) & 1n ? [] : ['CAP_NET_ADMIN']),
    ...((caps >> CAP_SYS_ADMIN) & 1n ? [] : ['CAP_SYS_ADMIN'])
  ]
  if (missing.length > 0) {
    throw new LabUnavailableError(`swarm up --netns needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root has both) to create network namespaces and links, and this process lacks ${missing.join(' and ')}: run it as root, e.g. with sudo`)
  }
  for (const tool of ['ip', 'tc'] as const) {
    try {
      await run(tool, ['-V'])
    } catch {
      throw new LabUnavailableError(`swarm up --netns needs the "${tool}" command from iproute2 (e.g. apt-get install iproute2)`)
    }
  }
}
