/**
 * shoal ui [--open]: a login link to the dashboard the daemon serves on its
 * API address. The daemon makes a one-time code (asked for with the API
 * token, over the unix socket); the link carries the code, never the token,
 * and works once, within a minute (docs/ui.md). `--open` passes the link
 * to the opener on its command line, which other local users can read
 * (/proc) until the link is used or expires: said in --help.
 */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import { ApiClient } from '../../api/client.ts'
import type { LoginCode } from '../../api/ui-routes.ts'
import { globals, output } from '../context.ts'

export function registerUi (program: Command): void {
  program.command('ui')
    .description('print a one-time login link to the web dashboard (valid for a minute, works once)')
    .option('--open', 'also open it in the default browser (the opener gets the link on its command line, which other local users can read until it is used or expires; leave it out on a shared machine)')
    .action(async (opts: { open?: boolean }, command: Command) => {
      const g = globals(command)
      const login = await (await ApiClient.fromRepo(g.repo)).request<LoginCode & { url: string }>('POST', '/api/v1/ui/login-code')
      output(g, login, r => `${r.url}\n(works once, until ${new Date(r.expiresAt).toLocaleTimeString()})`)
      if (opts.open === true) openInBrowser(login.url)
    })
}

function openInBrowser (url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open'
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true })
  child.on('error', () => { process.stderr.write(`shoal: could not start ${opener}; open the link above yourself\n`) })
  child.unref()
}
