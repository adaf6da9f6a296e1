// The swarm this daemon belongs to (`shoal swarm up`): every peer, up or
// down; for a lab swarm, each host's link and the partition in place.
import { formatBytes, short } from '../api.js'
import { html } from '../html.js'

function rate (bytes) { return bytes == null ? 'unlimited' : `${formatBytes(bytes)}/s` }

export function SwarmView ({ state }) {
  const swarm = state.swarm
  if (swarm == null) {
    return html`<section class="panel"><h2>Swarm</h2><p class="muted" id="no-swarm">This daemon is not part of a swarm made by <code>shoal swarm up</code>.</p></section>`
  }
  const up = swarm.peers.filter(p => p.up).length
  const groupOf = index => swarm.lab?.partition?.findIndex(g => g.includes(index)) ?? -1
  const hostOf = index => swarm.lab?.hosts.find(h => h.peers.includes(index))
  return html`
    <section class="panel"><h2>Swarm</h2>
      <p class="mono">${swarm.dir}</p>
      <p>${up} of ${swarm.peers.length} peers up · replicas ${swarm.replicas}${swarm.lab != null ? ` · lab with ${swarm.lab.hosts.length} hosts` : ''}${swarm.lab?.partition != null ? ` · partitioned into ${swarm.lab.partition.length} groups` : ''}</p>
      <table id="swarm-peers"><thead><tr><th>#</th><th>peer</th><th>state</th><th>API</th>${swarm.lab != null && html`<th>host</th><th>link (up / down / latency)</th><th>partition group</th>`}</tr></thead>
      <tbody>${swarm.peers.map(p => {
        const host = hostOf(p.index)
        return html`<tr data-index=${p.index}><td>${p.index}${p.self ? ' (this)' : ''}</td><td class="mono" title=${p.peerId}>${short(p.peerId)}</td>
          <td><span class=${`tag ${p.up ? 'up' : 'down'}`}>${p.up ? 'up' : 'down'}</span></td><td class="mono">${p.api}</td>
          ${swarm.lab != null && html`<td class="host">${host?.index ?? ''}</td><td class="link">${host == null ? '' : `${rate(host.link.uplink)} / ${rate(host.link.downlink)} / ${host.link.latencyMs} ms`}</td><td class="partition">${groupOf(p.index) < 0 ? '–' : groupOf(p.index)}</td>`}</tr>`
      })}</tbody></table>
    </section>`
}
