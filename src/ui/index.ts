/**
 * The dashboard's static files: the page, its modules and stylesheet
 * (./assets), and the UI library (Preact, its hooks, htm) served straight
 * from node_modules, so `npm install` is the whole setup and nothing is
 * fetched from outside. The control API serves them (src/api/ui-routes.ts).
 *
 * ```
 *   GET /              -> assets/index.html (import map + one module script)
 *   GET /ui/app/NAME   -> assets/NAME (.js modules, .css)
 *   GET /ui/vendor/X   -> node_modules/{preact,preact/hooks,htm} ESM builds
 * ```
 *
 * The page has no inline script or style. The one inline element is the
 * import map (bare names "preact", "preact/hooks", "htm" to the vendor
 * paths), which the Content-Security-Policy allows by its sha-256 hash.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export interface UiAsset {
  body: Buffer
  type: string
}

const ASSETS_DIR = assetsDir()
const require = createRequire(import.meta.url)

/** The UI library's ESM builds, by the name the page imports them under. */
const VENDOR: Record<string, { url: string, file: () => string }> = {
  preact: { url: '/ui/vendor/preact.js', file: () => path.join(packageDir('preact'), 'dist/preact.module.js') },
  'preact/hooks': { url: '/ui/vendor/hooks.js', file: () => path.join(packageDir('preact'), 'hooks/dist/hooks.module.js') },
  htm: { url: '/ui/vendor/htm.js', file: () => path.join(packageDir('htm'), 'dist/htm.module.js') }
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml'
}

/** The import map the page carries, exactly as written into it. */
export const IMPORT_MAP = JSON.stringify({ imports: Object.fromEntries(Object.entries(VENDOR).map(([name, v]) => [name, v.url])) })

/** `'sha256-…'` of the import map, for the CSP's script-src. */
export const IMPORT_MAP_HASH = `'sha256-${createHash('sha256').update(IMPORT_MAP).digest('base64')}'`

/**
 * The Content-Security-Policy of every dashboard response: scripts and
 * styles only from this origin (plus the import map by hash), no eval, no
 * inline style, requests only to this origin, no framing, no plugins.
 */
export const UI_CSP = [
  "default-src 'none'",
  `script-src 'self' ${IMPORT_MAP_HASH}`,
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** Reads files once and keeps them: the assets do not change while a daemon runs. */
export class UiAssets {
  private readonly cache = new Map<string, Promise<UiAsset | undefined>>()

  /** The asset at this URL path, or undefined (not one of the dashboard's). */
  async get (urlPath: string): Promise<UiAsset | undefined> {
    const cached = this.cache.get(urlPath)
    if (cached != null) return cached
    const loading = this.load(urlPath)
    // only what exists is kept: unknown paths must not grow the cache
    this.cache.set(urlPath, loading)
    const found = await loading.catch(err => { this.cache.delete(urlPath); throw err })
    if (found == null) this.cache.delete(urlPath)
    return found
  }

  private async load (urlPath: string): Promise<UiAsset | undefined> {
    if (urlPath === '/') {
      const html = await fs.readFile(path.join(ASSETS_DIR, 'index.html'), 'utf8')
      return { body: Buffer.from(html.replace('{{IMPORT_MAP}}', IMPORT_MAP)), type: TYPES['.html'] }
    }
    const vendor = Object.values(VENDOR).find(v => v.url === urlPath)
    if (vendor != null) return { body: await fs.readFile(vendor.file()), type: TYPES['.js'] }
    const match = /^\/ui\/app\/([a-z0-9-]+(?:\/[a-z0-9-]+)?\.(?:js|css|svg))$/.exec(urlPath)
    if (match == null) return undefined
    const type = TYPES[path.extname(match[1])]
    try {
      return { body: await fs.readFile(path.join(ASSETS_DIR, match[1])), type }
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined
      throw err
    }
  }
}

/**
 * ./assets beside this module; from the daemon bundle local swarms run
 * (node_modules/.cache/shoal/…, src/swarm/daemon-bundle.ts), the checkout's
 * src/ui/assets found by walking up.
 */
function assetsDir (): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  if (existsSync(path.join(here, 'assets', 'index.html'))) return path.join(here, 'assets')
  for (let dir = here; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'src', 'ui', 'assets')
    if (existsSync(path.join(candidate, 'index.html'))) return candidate
    if (path.dirname(dir) === dir) return path.join(here, 'assets')
  }
}

/** The folder of an installed package (not every package exports its package.json). */
function packageDir (name: string): string {
  let dir = path.dirname(require.resolve(name))
  while (!dir.endsWith(path.join('node_modules', name))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`cannot find the folder of the package ${name}`)
    dir = up
  }
  return dir
}
