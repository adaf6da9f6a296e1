// The network: every peer this peer knows, placed in the keyspace as its
// overlay arranges them (the `routing` event, GET /routing), and a lookup
// typed in (GET /lookup) drawn hop by hop.
//   Kademlia: rings of XOR buckets around this peer (outer ring: bucket 0,
//   the half of the keyspace that differs in the first bit), each peer at
//   the angle of its position.
//   Chord: the ring in identifier order, with this peer's fingers and
//   successor list.
import { useEffect, useState } from 'preact/hooks'
import { api, short } from '../api.js'
import { html } from '../html.js'
import { commonPrefix, fraction, keyPosition, peerPosition, xorCloser } from '../keyspace.js'

const SIZE = 600
const C = SIZE / 2
const HOP_STEP_MS = 450

function ringRadius (prefix) { return 270 * 0.8 ** prefix }

function point (frac, r) {
  const a = 2 * Math.PI * frac - Math.PI / 2
  return [C + r * Math.cos(a), C + r * Math.sin(a)]
}

function peersOf (routing) {
  if (routing.overlay === 'kademlia') return routing.buckets.flatMap(b => b.peers)
  return [...new Set([...(routing.predecessor ? [routing.predecessor] : []), ...routing.successors, ...routing.fingers.map(f => f.peerId)])].filter(p => p !== routing.self)
}

/** Where each peer is drawn: [x, y] by peer ID. */
async function layout (routing, extra) {
  const self = await peerPosition(routing.self)
  const ids = [...new Set([...peersOf(routing), ...extra])].filter(p => p !== routing.self)
  const spots = { [routing.self]: routing.overlay === 'kademlia' ? [C, C] : point(fraction(self), 260) }
  for (const id of ids) {
    const pos = await peerPosition(id)
    spots[id] = routing.overlay === 'kademlia' ? point(fraction(pos), ringRadius(commonPrefix(self, pos))) : point(fraction(pos), 260)
  }
  return { self, spots }
}

function Lookup ({ onResult }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState(null)
  const [busy, setBusy] = useState(false)
  const go = e => {
    e.preventDefault()
    if (key.trim() === '') return
    setBusy(true)
    setError(null)
    api('GET', `/lookup?key=${encodeURIComponent(key.trim())}`)
      .then(onResult, err => { setError(err.message) })
      .finally(() => { setBusy(false) })
  }
  return html`<form class="row" onSubmit=${go}>
    <input type="text" id="lookup-key" placeholder="a CID or hex key to look up" value=${key} onInput=${e => { setKey(e.target.value) }} />
    <button type="submit" id="lookup-go" disabled=${busy}>${busy ? 'Looking up…' : 'Look up'}</button>
    ${error != null && html`<span class="error" id="lookup-error">${error}</span>`}
  </form>`
}

function LookupDrawing ({ lookup, spots, keySpot, shown, selfId, overlay }) {
  const ordered = [...lookup.path].sort((a, b) => a.ms - b.ms)
  const visible = ordered.filter(h => h.hop <= shown)
  const lines = []
  if (overlay === 'chord') {
    let from = selfId
    for (const hop of visible) { lines.push([from, hop.peerId]); if (hop.ok) from = hop.peerId }
  } else {
    // hop d was named by a peer of hop d-1: drawn from the one that answered closest to the key
    for (const hop of visible) {
      const parents = lookup.path.filter(p => p.hop === hop.hop - 1 && p.ok && p.hop <= shown)
      lines.push([parents.length === 0 ? selfId : parents[0].peerId, hop.peerId])
    }
  }
  return html`<g>
    ${lines.filter(([a, b]) => spots[a] && spots[b]).map(([a, b]) => html`<line class="hopline" x1=${spots[a][0]} y1=${spots[a][1]} x2=${spots[b][0]} y2=${spots[b][1]} />`)}
    ${visible.filter(h => spots[h.peerId]).map(h => html`<circle class=${`peer ${!h.ok ? 'fail' : shown > lookup.hops && lookup.responsible.includes(h.peerId) ? 'resp' : 'hop'}`} r="6" cx=${spots[h.peerId][0]} cy=${spots[h.peerId][1]} data-hop=${h.hop}><title>${`hop ${h.hop}: ${h.peerId} (${Math.round(h.ms)} ms${h.ok ? '' : ', failed'})`}</title></circle>`)}
    ${shown > lookup.hops && lookup.responsible.filter(id => spots[id]).map(id => html`<circle class="resp-mark" r="10" cx=${spots[id][0]} cy=${spots[id][1]} data-responsible=${id}><title>${`responsible: ${id}`}</title></circle>`)}
    ${keySpot != null && html`<circle class="key" r="9" cx=${keySpot[0]} cy=${keySpot[1]}><title>${`key ${lookup.key}`}</title></circle>`}
  </g>`
}

export function NetworkView ({ state }) {
  const routing = state.routing
  const [drawn, setDrawn] = useState(null)
  const [lookup, setLookup] = useState(null)
  const [shown, setShown] = useState(0)

  useEffect(() => {
    if (routing == null) return
    let live = true
    const extra = lookup == null ? [] : [...lookup.path.map(h => h.peerId), ...lookup.responsible]
    ;(async () => {
      const { self, spots } = await layout(routing, extra)
      let keySpot
      if (lookup != null) {
        const key = await keyPosition(lookup.key)
        keySpot = routing.overlay === 'kademlia' ? point(fraction(key), ringRadius(commonPrefix(self, key))) : point(fraction(key), 285)
        // Kademlia: parents in the drawing are the ok peers closest to the key
        lookup.path.sort((a, b) => a.hop - b.hop)
        const positions = Object.fromEntries(await Promise.all(lookup.path.map(async h => [h.peerId, await peerPosition(h.peerId)])))
        lookup.path.sort((a, b) => a.hop === b.hop ? (xorCloser(positions[a.peerId], positions[b.peerId], key) ? -1 : 1) : a.hop - b.hop)
      }
      if (live) setDrawn({ spots, keySpot })
    })()
    return () => { live = false }
  }, [routing, lookup])

  // the lookup unrolls one hop depth at a time (an animation, not a poll)
  useEffect(() => {
    if (lookup == null) return
    setShown(0)
    let depth = 0
    const timer = setInterval(() => {
      depth++
      setShown(depth)
      if (depth > lookup.hops) clearInterval(timer)
    }, HOP_STEP_MS)
    return () => { clearInterval(timer) }
  }, [lookup])

  if (routing == null) return html`<p class="muted">Waiting for the routing state…</p>`
  const spots = drawn?.spots ?? {}
  const peers = peersOf(routing)
  const chord = routing.overlay === 'chord'
  const rings = chord ? [260] : [...new Set(routing.buckets.map(b => b.prefix))].map(ringRadius)
  const roleOf = id => chord ? (id === routing.predecessor ? 'pred' : routing.successors.includes(id) ? 'succ' : '') : ''
  return html`
    <section class="panel"><h2>${chord ? 'Chord ring' : 'Kademlia buckets'} · ${peers.length} peers known</h2>
      <${Lookup} onResult=${setLookup} />
      ${lookup != null && html`<p id="lookup-summary">Lookup of <code>${lookup.key}</code>: ${lookup.hops} hops, ${lookup.messages} queries, ${Math.round(lookup.ms)} ms · responsible: ${lookup.responsible.map(short).join(', ')}</p>`}
      <svg class="keyspace" id="keyspace" viewBox=${`0 0 ${SIZE} ${SIZE}`} data-overlay=${routing.overlay}>
        ${rings.map(r => html`<circle class="ring" cx=${C} cy=${C} r=${r} />`)}
        ${!chord && routing.buckets.map(b => html`<text x=${C + 4} y=${C - ringRadius(b.prefix) + 12}>${`bucket ${b.prefix}`}</text>`)}
        ${chord && spots[routing.self] != null && routing.fingers.filter(f => spots[f.peerId]).map(f => html`<path class="finger" d=${`M ${spots[routing.self][0]} ${spots[routing.self][1]} Q ${C} ${C} ${spots[f.peerId][0]} ${spots[f.peerId][1]}`}><title>${`finger ${f.index}: ${f.peerId}`}</title></path>`)}
        ${peers.filter(id => spots[id]).map(id => html`<circle class=${`peer ${roleOf(id)}`} r="5" cx=${spots[id][0]} cy=${spots[id][1]} data-peer=${id}><title>${id}</title></circle>`)}
        ${spots[routing.self] != null && html`<circle class="peer self" r="8" cx=${spots[routing.self][0]} cy=${spots[routing.self][1]}><title>${`this peer: ${routing.self}`}</title></circle>`}
        ${lookup != null && drawn != null && html`<${LookupDrawing} lookup=${lookup} spots=${spots} keySpot=${drawn.keySpot} shown=${shown} selfId=${routing.self} overlay=${routing.overlay} />`}
      </svg>
    </section>
    <section class="panel"><h2>Routing table</h2>
      <table id="routing-table"><thead><tr><th>${chord ? 'role' : 'bucket'}</th><th>peers</th></tr></thead><tbody>
      ${chord
        ? [['predecessor', routing.predecessor ? [routing.predecessor] : []], ['successors', routing.successors], ...routing.fingers.map(f => [`finger ${f.index}`, [f.peerId]])]
            .map(([role, ids]) => html`<tr><td>${role}</td><td>${ids.map(id => html`<div class="mono" data-peer=${id}>${id}</div>`)}</td></tr>`)
        : routing.buckets.map(b => html`<tr><td>${b.prefix}</td><td>${b.peers.map(id => html`<div class="mono" data-peer=${id}>${id}</div>`)}</td></tr>`)}
      </tbody></table>
    </section>`
}
