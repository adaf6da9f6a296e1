/**
 * The lab's part of a swarm's life: making its network before the peers
 * start, the fault and link commands on a running lab swarm, and taking it
 * all down. process-swarm.ts calls the first and the last; the CLI calls
 * the others.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { InvalidInputError } from '../../errors.ts'
import { updateSwarmFile, writeSwarmFile, type SwarmFile } from '../swarm-file.ts'
import { killProcesses } from '../peer-process.ts'
import { NotALabSwarmError } from './errors.ts'
import { UNLIMITED_LINK, type LabHost, type LabRecord, type LinkSpec } from './index.ts'
import { applyLinks, describeLink } from './links.ts'
import { applyPartition, healPartition, parseGroups } from './partition.ts'
import { createLab, deleteNamespaces, labId, labNamespaces, namespacesOfLab, pidsInNamespace } from './topology.ts'

/** Makes the lab's namespaces, bridge, veths and links. The record must already be in swarm.json. */
export async function buildLab (lab: LabRecord, signal?: AbortSignal): Promise<void> {
  await createLab(lab, signal)
  await applyLinks(lab, lab.hosts, signal)
}

export interface LabTeardown {
  /** Namespaces deleted. */
  namespaces: number
  /** Processes still inside them that were SIGKILLed. */
  killed: number
}

/**
 * Takes down everything of a lab: the namespaces swarm.json records and any
 * other whose name carries the folder's lab id, after SIGKILLing whatever
 * process is still inside one; then the link files. Safe to run again
 * after it died midway, and when nothing is left.
 */
export async function teardownLab (dir: string, lab?: Pick<LabRecord, 'id' | 'switchNamespace' | 'hosts'>): Promise<LabTeardown> {
  const id = lab?.id ?? labId(dir)
  const names = [...new Set([...(lab != null ? labNamespaces(lab) : []), ...await namespacesOfLab(id)])]
  const pids = names.flatMap(pidsInNamespace)
  await killProcesses(pids)
  const present = new Set(await namespacesOfLab(id))
  const toDelete = names.filter(n => present.has(n))
  await deleteNamespaces(toDelete)
  await fs.rm(path.join(path.resolve(dir), 'lab'), { recursive: true, force: true })
  return { namespaces: toDelete.length, killed: pids.length }
}

/** Namespaces of this folder's lab id that exist now (leftovers of a swarm that died). */
export async function labLeftovers (dir: string): Promise<string[]> {
  return namespacesOfLab(labId(dir))
}

export function requireLab (swarm: SwarmFile, dir: string): LabRecord {
  if (swarm.lab == null) throw new NotALabSwarmError(`the swarm in ${path.resolve(dir)} is not a lab swarm (start one with "shoal swarm up --netns")`)
  return swarm.lab
}

/** Which hosts `--peer I` / `--all` name. */
function hostsOf (lab: LabRecord, peer: number | 'all'): LabHost[] {
  if (peer === 'all') return lab.hosts
  const host = lab.hosts.find(h => h.peers.includes(peer))
  if (host == null) throw new InvalidInputError(`no peer ${peer} in this lab (it has peers 0 to ${Math.max(...lab.hosts.flatMap(h => h.peers))})`)
  return [host]
}

export interface LinkChangeResult {
  dir: string
  hosts: Array<{ host: number, peers: number[], link: LinkSpec, description: string }>
}

/**
 * `swarm link`: changes the links of the hosts running these peers. Fields
 * not given keep their value; a rate of null removes that cap.
 */
export async function swarmLink (dir: string, peer: number | 'all', change: Partial<LinkSpec>, signal?: AbortSignal): Promise<LinkChangeResult> {
  const hosts = await updateSwarmFile(dir, async (swarm) => {
    const lab = requireLab(swarm, dir)
    const chosen = hostsOf(lab, peer)
    for (const h of chosen) h.link = { ...UNLIMITED_LINK, ...h.link, ...change }
    await applyLinks(lab, chosen, signal)
    return chosen
  })
  return {
    dir: path.resolve(dir),
    hosts: hosts.map(h => ({ host: h.index, peers: h.peers, link: h.link, description: describeLink(h.link) }))
  }
}

/** `swarm partition --groups`: cuts the lab into these groups (replacing any partition in place). */
export async function swarmPartition (dir: string, groupsText: string, signal?: AbortSignal): Promise<{ dir: string, groups: number[][] }> {
  const groups = await updateSwarmFile(dir, async (swarm) => {
    const lab = requireLab(swarm, dir)
    const parsed = parseGroups(groupsText, swarm.peers.length, lab)
    // recorded first: a partition that dies midway is still healed or torn down
    lab.partition = parsed
    await writeSwarmFile(dir, swarm)
    await applyPartition(lab, parsed, signal)
    return parsed
  })
  return { dir: path.resolve(dir), groups }
}

/** `swarm heal`: one network again. Harmless when there is no partition. */
export async function swarmHeal (dir: string, signal?: AbortSignal): Promise<{ dir: string, healed: boolean }> {
  const healed = await updateSwarmFile(dir, async (swarm) => {
    const lab = requireLab(swarm, dir)
    const was = lab.partition != null
    await healPartition(lab, signal)
    lab.partition = null
    return was
  })
  return { dir: path.resolve(dir), healed }
}
