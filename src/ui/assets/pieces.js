// The piece bar of a fetch, as BitTorrent clients draw it: one cell per
// piece of the file in order, grey until it arrives, then in the colour of
// the peer that sent it (dark: it was here already).
import { formatBytes, short } from './api.js'
import { html } from './html.js'

export const PALETTE = ['#4fb3ff', '#3fb950', '#d29922', '#c678dd', '#f778ba', '#56d4dd', '#e3b341', '#ff7b72', '#a5d6ff', '#7ee787']
/** Cells drawn at most: a bigger file has several pieces per cell. */
const MAX_CELLS = 480

/** Folds a progress event into the job's cells: null missing, '' here before, else the sender's peer ID. */
export function foldPieces (cells, pieces) {
  if (pieces == null) return cells
  const next = cells != null && cells.length === pieces.total ? cells.slice() : new Array(pieces.total).fill(null)
  for (const i of pieces.here ?? []) next[i] = ''
  for (const [i, from] of pieces.arrived) next[i] = from
  return next
}

/** Peer ID -> colour, in order of first arrival. */
function colours (cells) {
  const map = new Map()
  for (const c of cells) if (c && !map.has(c)) map.set(c, PALETTE[map.size % PALETTE.length])
  return map
}

export function PieceBar ({ cells, done, sources }) {
  if (cells == null) return null
  const palette = colours(cells)
  const per = Math.max(1, Math.ceil(cells.length / MAX_CELLS))
  const drawn = []
  for (let j = 0; j < cells.length; j += per) {
    const group = cells.slice(j, j + per)
    const arrived = group.filter(c => c != null)
    // a finished fetch has every piece, including arrivals a dropped report did not list
    const complete = arrived.length === group.length || done
    const from = arrived.find(c => c !== '')
    const state = !complete ? 'missing' : from != null ? 'from' : arrived.length > 0 ? 'here' : 'done'
    drawn.push(html`<div class=${`piece ${state}`} data-piece=${j} data-from=${state === 'from' ? from : ''}
      style=${state === 'from' ? { background: palette.get(from) } : null}
      title=${`piece ${j}${per > 1 ? `–${Math.min(cells.length, j + per) - 1}` : ''}: ${state === 'from' ? from : state === 'here' ? 'here before the fetch' : state === 'done' ? 'fetched' : 'not yet'}`}></div>`)
  }
  const counts = new Map()
  for (const c of cells) if (c) counts.set(c, (counts.get(c) ?? 0) + 1)
  return html`<div class="pieces">${drawn}</div>
    <div class="legend">${[...palette].map(([peer, colour]) => html`<span style=${{ '--c': colour }} title=${peer}>${short(peer)}: ${counts.get(peer)} pieces${sources?.[peer] != null ? `, ${formatBytes(sources[peer].bytes)}` : ''}</span>`)}</div>`
}
