// A file: its blocks in DAG order, each coloured by how many of its k
// closest peers hold it (GET /content/CID/stat asks them), holders on hover;
// while a fetch of it runs, its progress.
import { useEffect, useState } from 'preact/hooks'
import { api, formatBytes, short } from '../api.js'
import { html } from '../html.js'
import { PieceBar } from '../pieces.js'

/** 'full' (k of k), 'some' (fewer) or 'none', counting holders among the k closest. */
export function blockClass (block, k) {
  const onClosest = block.holders.filter(h => block.closest.includes(h)).length
  return onClosest >= Math.min(k, block.closest.length) && onClosest > 0 ? 'full' : onClosest > 0 ? 'some' : 'none'
}

export function FileView ({ cid, state }) {
  const [input, setInput] = useState(cid ?? '')
  const [stat, setStat] = useState(null)
  const [error, setError] = useState(null)
  const [loading, setLoading] = useState(false)
  const job = Object.values(state.jobs).find(j => j.cid === cid)
  const jobDone = job?.done?.ok === true

  const load = () => {
    if (cid == null) return
    setLoading(true)
    setError(null)
    api('GET', `/content/${cid}/stat`).then(setStat, err => { setStat(null); setError(err.message) }).finally(() => { setLoading(false) })
  }
  useEffect(() => { setInput(cid ?? ''); setStat(null); load() }, [cid])
  // a fetch or share of this file just finished: who holds what has changed
  useEffect(() => { if (jobDone) load() }, [jobDone])

  const go = e => { e.preventDefault(); if (input.trim() !== '') location.hash = `#/file/${input.trim()}` }
  const held = (state.holdings?.holdings ?? []).filter(h => h.cid === cid)
  const counts = { full: 0, some: 0, none: 0 }
  stat?.blocks.forEach(b => { counts[blockClass(b, stat.replicas)]++ })
  const p = job?.progress
  return html`
    <section class="panel"><h2>File</h2>
      <form class="row" onSubmit=${go}>
        <input type="text" id="file-cid" placeholder="CID of a file held here" value=${input} onInput=${e => { setInput(e.target.value) }} />
        <button type="submit">Show</button>
        ${cid != null && html`<button type="button" id="file-refresh" onClick=${load}>Ask the holders again</button>`}
      </form>
      ${held.length > 0 && html`<p>${held.map(h => html`<span class=${`tag ${h.reason}`}>${h.reason}</span> `)} ${held[0].name ?? ''} · ${formatBytes(held[0].size)}</p>`}
      ${job != null && job.kind === 'fetch' && html`<div class="job"><div class="bar"><div style=${{ width: `${jobDone ? 100 : p?.totalBlocks > 0 ? Math.round(100 * p.blocks / p.totalBlocks) : 0}%` }}></div></div>
        <div class="meta">${jobDone ? 'fetched' : p != null ? `fetching: ${p.blocks} of ${p.totalBlocks} blocks from ${p.peers} peers` : 'fetching'}</div>
        <${PieceBar} cells=${job.cells} done=${jobDone} sources=${job.done?.sources} /></div>`}
      ${loading && html`<p class="muted">Asking each block's closest peers…</p>`}
      ${error != null && html`<p class="error">${error}</p>`}
    </section>
    ${stat != null && html`<section class="panel"><h2>${stat.blocks.length} blocks, k = ${stat.replicas}</h2>
      <div class="legend"><span class="full">${counts.full} on all k closest</span><span class="some">${counts.some} on fewer</span><span class="none">${counts.none} on none</span></div>
      <div class="blocks" id="blocks">${stat.blocks.map((b, i) => {
        const cls = blockClass(b, stat.replicas)
        const holders = b.holders.map(h => `${short(h)}${b.closest.includes(h) ? ' *' : ''}`).join('\n') || '(no holder found)'
        return html`<div class=${`block ${cls}`} data-index=${i} data-holders=${b.holders.length} data-closest-holders=${b.holders.filter(h => b.closest.includes(h)).length}
          title=${`block ${i}: ${b.cid}\n${formatBytes(b.size)}\nholders (* among the ${stat.replicas} closest):\n${holders}`}></div>`
      })}</div>
    </section>`}`
}
