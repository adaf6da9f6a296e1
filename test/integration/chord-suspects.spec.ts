/**
 * Which failed Chord queries make a peer dead at once (suspects.ts), on
 * real libp2p over TCP: a dial to a peer that stopped is refused, and
 * that error, as libp2p throws it, says "unreachable"; a dial to a peer
 * that accepts but never finishes its handshake (a stalled process) only
 * times out, and does not. A Chord peer keeps a successor that stops
 * answering until it has failed SUSPECT_LIMIT queries in a row.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import { CHORD_PROTOCOL, SUSPECT_LIMIT } from '../../src/routing/chord/constants.ts'
import { ChordRequestCodec, ChordResponseCodec, peerIdBytes } from '../../src/routing/chord/messages.ts'
import { isUnreachable } from '../../src/routing/chord/suspects.ts'
import { waitFor } from '../../src/utils/wait.ts'
import { createChordNode, createPlainNode, type ChordNode } from '../helpers/chord-nodes.ts'

describe('Chord suspects over TCP', function () {
  this.timeout(60_000)
  const nodes: Libp2p[] = []
  const servers: net.Server[] = []
  const sockets: net.Socket[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop()))
    for (const socket of sockets.splice(0)) socket.destroy()
    for (const server of servers.splice(0)) server.close()
  })

  const plainNode = async (): Promise<Libp2p> => {
    const node = await createPlainNode()
    nodes.push(node)
    return node
  }

  it('a dial to a stopped peer is unreachable; one to a peer that never finishes its handshake is not', async () => {
    const asker = await plainNode()
    const gone = await plainNode()
    const addr = gone.getMultiaddrs()[0]
    await gone.stop()
    const refusedErr = await asker.dialProtocol(addr, CHORD_PROTOCOL, { signal: AbortSignal.timeout(10_000) }).then(() => undefined, (err: unknown) => err)
    assert.ok(refusedErr != null, 'the dial to a stopped peer failed')
    assert.equal(isUnreachable(refusedErr), true, `refused: ${String(refusedErr)}`)

    // accepts the TCP connection and says nothing: a peer too busy to handshake
    const server = net.createServer(socket => { sockets.push(socket) })
    servers.push(server)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    const silent = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const stalledErr = await asker.dialProtocol(multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${silent}`), CHORD_PROTOCOL, { signal: AbortSignal.timeout(500) }).then(() => undefined, (err: unknown) => err)
    assert.ok(stalledErr != null, 'the dial to a silent peer failed')
    assert.equal(isUnreachable(stalledErr), false, `stalled: ${String(stalledErr)}`)
  })

  it('keeps a successor that stops answering until it has failed SUSPECT_LIMIT queries in a row', async () => {
    const n: ChordNode = await createChordNode({ queryTimeoutMs: 300, stabilizeIntervalMs: 200 })
    nodes.push(n)
    const self = n.peerId.toString()
    // the successor: a peer that answers as the other half of a ring of two, while `answering`
    const successor = await plainNode()
    let answering = true
    let unanswered = 0
    /** n's successors when the last unanswered query before the limit arrived. */
    let listAtLimit: string[] | undefined
    await successor.handle(CHORD_PROTOCOL, async stream => {
      const pb = pbStream(stream)
      try {
        for (;;) {
          const request = await pb.read(ChordRequestCodec)
          if (!answering) {
            unanswered++
            if (unanswered === SUSPECT_LIMIT) listAtLimit = [...(n.services.chord.routing() as { successors: string[] }).successors]
            continue
          }
          const me = { id: peerIdBytes(self), addrs: [n.getMultiaddrs()[0].bytes] }
          await pb.write(request.ping != null ? { ack: {} } : { state: { predecessor: me, successors: [me], complete: true } }, ChordResponseCodec)
        }
      } catch {
        // the asker gave up on the stream
      }
    }, { runOnLimitedConnection: false })
    const id = successor.peerId.toString()
    const result = await n.services.chord.join([successor.getMultiaddrs()[0].toString()], { successors: true, signal: AbortSignal.timeout(10_000) })
    assert.equal(result.connected, 1)
    const successors = (): string[] => (n.services.chord.routing() as { successors: string[] }).successors
    await waitFor(() => successors()[0] === id, { timeoutMs: 10_000, message: () => 'the successor was never taken' })

    answering = false
    await waitFor(() => listAtLimit != null, { timeoutMs: 20_000, message: () => `${unanswered} queries went unanswered` })
    assert.equal(listAtLimit![0], id, `still the successor after ${SUSPECT_LIMIT - 1} failed queries`)
    await waitFor(() => !successors().includes(id), { timeoutMs: 20_000, message: () => 'the successor was never dropped' })
  })
})
