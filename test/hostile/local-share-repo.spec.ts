/**
 * Nothing inside a peer's repo is ever shared: not the identity key, not
 * the API token, not the stores, whether named directly or through a link
 * from outside the repo. A share would hand those bytes to the network.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ShoalPeer } from '../../src/peer/peer.ts'
import { Repo } from '../../src/peer/repo.ts'
import { tempDir } from '../helpers/cli.ts'

describe('hostile: sharing files from inside the repo', function () {
  this.timeout(60_000)
  let dir: string
  let peer: ShoalPeer
  before(async () => {
    dir = await tempDir('shoal-share-repo-')
    const repo = path.join(dir, 'repo')
    await Repo.init(repo, { listen: ['/ip4/127.0.0.1/tcp/0'] })
    peer = await ShoalPeer.open(repo)
    await peer.start()
  })
  after(async () => {
    await peer?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('refuses the identity key, the API token and a link to the key from outside the repo, and still shares a file beside it', async () => {
    const repo = peer.repo.path
    const link = path.join(dir, 'innocent.txt')
    await fs.symlink(path.join(repo, 'identity.key'), link)
    for (const file of [path.join(repo, 'identity.key'), path.join(repo, 'api.token'), link]) {
      await assert.rejects(peer.share({ path: file }, { replicas: 0 }), (err: Error) => {
        assert.equal(err.name, 'InvalidPathError')
        assert.match(err.message, /^refusing to share .*: it is inside the peer's repo /)
        return true
      }, file)
    }
    assert.deepEqual(await peer.content.list(), [], 'nothing was imported')
    const outside = path.join(dir, 'notes.txt')
    await fs.writeFile(outside, 'shareable')
    const shared = await peer.share({ path: outside }, { replicas: 0 })
    assert.equal(shared.size, 'shareable'.length)
  })
})
