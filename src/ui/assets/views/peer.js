// This peer: identity, addresses, connections, routing table, store use,
// holdings (with rm), share (picker and drag-and-drop) and fetch by CID,
// each with its progress as the events stream reports it.
import { useState } from 'preact/hooks'
import { api, fetchCid, formatBytes, shareFile, short } from '../api.js'
import { html } from '../html.js'
import { PieceBar } from '../pieces.js'

function Stat ({ label, value, id }) {
  return html`<div class="stat"><div class="value" id=${id}>${value}</div><div class="label">${label}</div></div>`
}

function Bar ({ done, total }) {
  const pct = total > 0 ? Math.min(100, Math.round(100 * done / total)) : 0
  return html`<div class="bar"><div style=${{ width: `${pct}%` }}></div></div>`
}

function seconds (s) {
  if (s == null) return '–'
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`
}

function Job ({ job }) {
  const p = job.progress ?? {}
  const status = job.done == null ? 'running' : job.done.ok ? 'done' : `failed: ${job.done.message}`
  if (job.kind === 'share') {
    const placing = p.phase === 'place'
    return html`<div class="job share-job" data-status=${job.done == null ? 'running' : job.done.ok ? 'done' : 'failed'}>
      <div>Share <b>${job.name ?? ''}</b> ${job.cid != null && html`<a href=${`#/file/${job.cid}`} class="mono">${job.cid}</a>`} <span class="muted">${status}</span></div>
      <${Bar} done=${job.done?.ok ? 1 : placing ? p.done : 0} total=${job.done?.ok ? 1 : placing ? p.total : 1} />
      <div class="meta">${placing ? `placing replicas: ${p.done} of ${p.total} blocks` : p.bytes != null ? `importing: ${formatBytes(p.bytes)}` : ''}</div>
    </div>`
  }
  return html`<div class="job fetch-job" data-cid=${job.cid} data-status=${job.done == null ? 'running' : job.done.ok ? 'done' : 'failed'}>
    <div>Fetch <a href=${`#/file/${job.cid}`} class="mono">${job.cid}</a> <span class="muted">${status}</span></div>
    <${Bar} done=${job.done?.ok ? 1 : p.blocks ?? 0} total=${job.done?.ok ? 1 : p.totalBlocks ?? 0} />
    <${PieceBar} cells=${job.cells} done=${job.done?.ok === true} sources=${job.done?.sources} />
    <div class="meta fetch-meta">${p.blocks != null && `${p.blocks} of ${p.totalBlocks} blocks · ${formatBytes(p.bytes)} of ${formatBytes(p.size)} · ${p.peers} peers · ${formatBytes(p.rate)}/s · ETA ${seconds(p.eta)}`}</div>
  </div>`
}

function Share ({ onError }) {
  const [over, setOver] = useState(false)
  const share = files => {
    for (const file of files) shareFile(file, () => {}).catch(err => { onError(`share ${file.name}: ${err.message}`) })
  }
  return html`<div class=${`drop ${over ? 'over' : ''}`} id="drop"
      onDragOver=${e => { e.preventDefault(); setOver(true) }}
      onDragLeave=${() => { setOver(false) }}
      onDrop=${e => { e.preventDefault(); setOver(false); share([...e.dataTransfer.files]) }}>
    Drop files here to share them, or <label><input type="file" id="share-input" multiple
      onChange=${e => { share([...e.target.files]); e.target.value = '' }} /></label>
  </div>`
}

function Fetch ({ onError }) {
  const [cid, setCid] = useState('')
  const submit = e => {
    e.preventDefault()
    const wanted = cid.trim()
    if (wanted === '') return
    setCid('')
    fetchCid(wanted, () => {}).catch(err => { onError(`fetch ${wanted}: ${err.message}`) })
  }
  return html`<form class="row" onSubmit=${submit}>
    <input type="text" id="fetch-cid" placeholder="CID to fetch" value=${cid} onInput=${e => { setCid(e.target.value) }} />
    <button type="submit" id="fetch-go">Fetch</button>
  </form>`
}

export function PeerView ({ state }) {
  const { status, peers, holdings } = state
  const [error, setError] = useState(null)
  if (status == null) return html`<p class="muted">Waiting for the daemon…</p>`
  const store = status.store
  const jobs = Object.values(state.jobs).reverse()
  const remove = cid => { api('DELETE', `/content/${cid}`).catch(err => { setError(`rm ${cid}: ${err.message}`) }) }
  return html`
    <section class="panel"><h2>This peer</h2>
      <div class="mono" id="peer-id">${status.peerId}</div>
      <div class="muted">${status.multiaddrs.map(a => html`<div class="mono">${a}</div>`)}</div>
      <div class="grid">
        <${Stat} label="connections" value=${status.connections} id="stat-connections" />
        <${Stat} label="routing table" value=${status.dht.routingTableSize} id="stat-routing" />
        <${Stat} label=${`store (${store.quotaBytes == null ? 'no quota' : `of ${formatBytes(store.quotaBytes)}`})`} value=${formatBytes(store.bytes)} id="stat-store" />
        <${Stat} label="blocks stored" value=${store.blocks} />
      </div>
      ${store.quotaBytes != null && html`<${Bar} done=${store.bytes} total=${store.quotaBytes} />`}
    </section>
    <section class="panel"><h2>Share and fetch</h2>
      <${Share} onError=${setError} />
      <p><${Fetch} onError=${setError} /></p>
      ${error != null && html`<p class="error" id="ui-error">${error}</p>`}
      <div id="jobs">${jobs.map(job => html`<${Job} key=${job.id} job=${job} />`)}</div>
    </section>
    <section class="panel"><h2>Holdings</h2>
      <table id="holdings"><thead><tr><th>CID</th><th>name</th><th>why</th><th>size</th><th>blocks</th><th></th></tr></thead>
      <tbody>${(holdings?.holdings ?? []).map(h => html`<tr data-cid=${h.cid} data-reason=${h.reason}>
        <td><a class="mono" href=${`#/file/${h.cid}`}>${h.cid}</a></td><td>${h.name ?? ''}</td>
        <td><span class=${`tag ${h.reason}`}>${h.reason}${h.replicas != null ? ` (k=${h.replicas})` : ''}</span></td>
        <td>${formatBytes(h.size)}</td><td>${h.blocks}</td>
        <td><button class="danger" data-rm=${h.cid} onClick=${() => { remove(h.cid) }}>rm</button></td></tr>`)}</tbody></table>
    </section>
    <section class="panel"><h2>Connections</h2>
      <table id="connections"><thead><tr><th>peer</th><th>address</th><th>direction</th></tr></thead>
      <tbody>${(peers?.peers ?? []).map(c => html`<tr><td class="mono" title=${c.peerId}>${short(c.peerId)}</td><td class="mono">${c.multiaddr}</td><td>${c.direction}</td></tr>`)}</tbody></table>
    </section>`
}
