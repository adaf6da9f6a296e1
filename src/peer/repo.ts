/**
 * The repo folder: identity key, config, API token, the LevelDB datastore,
 * and the lock that keeps a second daemon off it.
 *
 *   <repo>/config.json    validated settings (defaults written on init)
 *   <repo>/identity.key   Ed25519 private key, protobuf, mode 0600
 *   <repo>/api.token      bearer token for the control API, mode 0600
 *   <repo>/api            HOST:PORT of the running daemon's API (while it runs)
 *   <repo>/repo.lock      pid of the daemon holding the repo
 *   <repo>/datastore/     LevelDB: peer store, DHT records, holdings
 *   <repo>/blocks/        the blockstore: one file per block, sharded folders
 */
import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey, PeerId } from '@libp2p/interface'
import { REPO_FILES } from '../constants.ts'
import {
  InvalidConfigError, InvalidIdentityError, RepoLockedError,
  RepoNotDirectoryError, RepoNotInitializedError, ShoalError
} from '../errors.ts'
import { isCode } from '../utils/fs.ts'
import { isProcessAlive } from '../utils/process.ts'
import { defaultConfig, validateConfig, type ShoalConfig } from './config.ts'

export interface InitResult {
  repo: string
  peerId: PeerId
  /** False when the repo already existed (init is idempotent). */
  created: boolean
}

export class Repo {
  readonly path: string
  readonly config: ShoalConfig
  readonly privateKey: PrivateKey
  readonly peerId: PeerId
  private locked = false

  private constructor (repoPath: string, config: ShoalConfig, privateKey: PrivateKey) {
    this.path = repoPath
    this.config = config
    this.privateKey = privateKey
    this.peerId = peerIdFromPrivateKey(privateKey)
  }

  file (name: keyof typeof REPO_FILES): string {
    return path.join(this.path, REPO_FILES[name])
  }

  /**
   * Creates whatever of the repo is missing and keeps what exists, so running
   * it twice is harmless. `config` overrides defaults for a new config only.
   */
  static async init (repoPath: string, config: Partial<ShoalConfig> = {}): Promise<InitResult> {
    const dir = path.resolve(repoPath)
    await ensureDirectory(dir)
    const configFile = path.join(dir, REPO_FILES.config)
    let created = false
    if (!(await exists(configFile))) {
      const full = validateConfig({ ...defaultConfig(), ...config }, configFile)
      await writeFileAtomic(configFile, JSON.stringify(full, null, 2) + '\n', 0o644)
      created = true
    }
    const keyFile = path.join(dir, REPO_FILES.identity)
    if (!(await exists(keyFile))) {
      const key = await generateKeyPair('Ed25519')
      await writeFileAtomic(keyFile, privateKeyToProtobuf(key), 0o600)
      created = true
    }
    const tokenFile = path.join(dir, REPO_FILES.apiToken)
    if (!(await exists(tokenFile))) {
      await writeFileAtomic(tokenFile, randomBytes(32).toString('hex') + '\n', 0o600)
      created = true
    }
    await fs.mkdir(path.join(dir, REPO_FILES.datastore), { recursive: true })
    await fs.mkdir(path.join(dir, REPO_FILES.blocks), { recursive: true })
    const repo = await Repo.open(dir)
    return { repo: dir, peerId: repo.peerId, created }
  }

  /** Opens an initialised repo: validated config and identity, no lock yet. */
  static async open (repoPath: string): Promise<Repo> {
    const dir = path.resolve(repoPath)
    await checkIsDirectoryIfExists(dir)
    const configFile = path.join(dir, REPO_FILES.config)
    let text: string
    try {
      text = await fs.readFile(configFile, 'utf8')
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new RepoNotInitializedError(`no Shoal repo at ${dir} (run "shoal init" first)`)
      throw new InvalidConfigError(`cannot read config ${configFile}: ${(err as Error).message}`)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new InvalidConfigError(`invalid config ${configFile}: not valid JSON (${(err as Error).message})`)
    }
    const config = validateConfig(parsed, configFile)
    const keyFile = path.join(dir, REPO_FILES.identity)
    let privateKey: PrivateKey
    try {
      privateKey = privateKeyFromProtobuf(await fs.readFile(keyFile))
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw new RepoNotInitializedError(`no identity key in ${dir} (run "shoal init")`)
      throw new InvalidIdentityError(`invalid identity key ${keyFile}: ${(err as Error).message}`)
    }
    return new Repo(dir, config, privateKey)
  }

  async apiToken (): Promise<string> {
    return readApiToken(this.path)
  }

  /**
   * Takes the repo lock: a file created exclusively, holding our pid. A lock
   * left by a process that no longer exists is taken over.
   */
  async lock (): Promise<void> {
    const lockFile = this.file('lock')
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await fs.open(lockFile, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644)
        await handle.writeFile(`${process.pid}\n`)
        await handle.close()
        this.locked = true
        return
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw new ShoalError(`cannot create lock ${lockFile}: ${(err as Error).message}`)
      }
      // a lock file gone or unreadable since is a lock nobody holds: take it over
      const pid = Number.parseInt(await fs.readFile(lockFile, 'utf8').catch(() => ''), 10)
      if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) {
        throw new RepoLockedError(`repo ${this.path} is in use by another Shoal daemon (pid ${pid})`)
      }
      await fs.rm(lockFile, { force: true })
    }
    throw new RepoLockedError(`repo ${this.path} is locked (${lockFile})`)
  }

  async unlock (): Promise<void> {
    if (!this.locked) return
    this.locked = false
    await fs.rm(this.file('lock'), { force: true })
  }

  async writeApiAddress (address: string): Promise<void> {
    await writeFileAtomic(this.file('apiAddress'), address + '\n', 0o644)
  }

  async removeApiAddress (): Promise<void> {
    await fs.rm(this.file('apiAddress'), { force: true })
  }
}

export async function readApiToken (repoPath: string): Promise<string> {
  return (await fs.readFile(path.join(repoPath, REPO_FILES.apiToken), 'utf8')).trim()
}

async function ensureDirectory (dir: string): Promise<void> {
  await checkIsDirectoryIfExists(dir)
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    if (isCode(err, 'ENOTDIR') || isCode(err, 'EEXIST')) throw new RepoNotDirectoryError(`repo path ${dir} is not a directory`)
    throw new ShoalError(`cannot create repo ${dir}: ${(err as Error).message}`)
  }
}

async function checkIsDirectoryIfExists (dir: string): Promise<void> {
  const stat = await fs.stat(dir).catch((err: unknown) => {
    if (isCode(err, 'ENOENT')) return undefined
    if (isCode(err, 'ENOTDIR')) throw new RepoNotDirectoryError(`repo path ${dir} is not a directory`)
    throw err
  })
  if (stat != null && !stat.isDirectory()) throw new RepoNotDirectoryError(`repo path ${dir} is not a directory`)
}

/** Temp file, fsync, rename: a crash leaves the old file or the new one. */
export async function writeFileAtomic (file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const handle = await fs.open(tmp, 'w', mode)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.chmod(tmp, mode)
  await fs.rename(tmp, file)
}

async function exists (file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false)
}

export { isCode }
