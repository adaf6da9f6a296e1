// The dashboard: one events stream feeds every view; the hash picks the view
// (#/peer, #/file/CID, #/network, #/swarm).
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, hasSecret, subscribe } from './api.js'
import { html } from './html.js'
import { foldPieces } from './pieces.js'
import { PeerView } from './views/peer.js'
import { FileView } from './views/file.js'
import { NetworkView } from './views/network.js'
import { SwarmView } from './views/swarm.js'

function useRoute () {
  const read = () => (location.hash.replace(/^#/, '') || '/peer').split('/').filter(Boolean)
  const [route, setRoute] = useState(read())
  useEffect(() => {
    const onHash = () => { setRoute(read()) }
    addEventListener('hashchange', onHash)
    return () => { removeEventListener('hashchange', onHash) }
  }, [])
  return route
}

function LoginNeeded () {
  return html`<main><section class="panel"><h2>Not logged in</h2>
    <p>This dashboard needs a session. On the machine the daemon runs on, run</p>
    <p><code>shoal ui</code></p>
    <p>and open the login link it prints (it works once, for a minute). Each
    browser tab needs its own link.</p></section></main>`
}

function App () {
  const route = useRoute()
  const [auth, setAuth] = useState(hasSecret() ? 'checking' : 'login')
  const [live, setLive] = useState(false)
  const [state, setState] = useState({ status: null, peers: null, holdings: null, routing: null, swarm: null, jobs: {} })

  useEffect(() => {
    if (auth !== 'checking') return
    api('GET', '/status').then(() => { setAuth('ok') }, err => { setAuth(err.status === 401 || err.status === 403 ? 'login' : 'ok') })
  }, [])

  useEffect(() => {
    if (auth !== 'ok') return
    return subscribe((topic, data) => {
      setState(s => {
        if (topic !== 'progress') return { ...s, [topic]: data }
        const prev = s.jobs[data.id]
        const jobs = { ...s.jobs, [data.id]: { ...prev, ...data, cells: foldPieces(prev?.cells, data.progress?.pieces) } }
        return { ...s, jobs }
      })
    }, (isLive, closed) => {
      setLive(isLive)
      if (closed) api('GET', '/status').catch(err => { if (err.status === 401 || err.status === 403) setAuth('login') })
    })
  }, [auth])

  if (auth === 'checking') return html`<main><p class="muted">Connecting…</p></main>`
  if (auth === 'login') return html`<${LoginNeeded} />`
  const [view, arg] = route
  const tab = (name, label) => html`<a href="#/${name}" class=${view === name ? 'active' : ''} data-view=${name}>${label}</a>`
  return html`
    <header>
      <h1>Shoal</h1>
      <nav>${tab('peer', 'This peer')}${tab('file', 'File')}${tab('network', 'Network')}${tab('swarm', 'Swarm')}</nav>
      <span class=${`live ${live ? 'on' : 'off'}`} id="live">${live ? 'live' : 'reconnecting'}</span>
    </header>
    <main>
      ${view === 'peer' && html`<${PeerView} state=${state} />`}
      ${view === 'file' && html`<${FileView} cid=${arg} state=${state} />`}
      ${view === 'network' && html`<${NetworkView} state=${state} />`}
      ${view === 'swarm' && html`<${SwarmView} state=${state} />`}
    </main>`
}

const root = document.getElementById('app')
// the loading note is static markup: replaced, not kept beside the app
root.textContent = ''
render(html`<${App} />`, root)
