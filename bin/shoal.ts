#!/usr/bin/env node
// The CLI's entry is bin/shoal.mjs: plain JavaScript starts ~0.1 s sooner.
// This file stays for links made before the move: npx keeps the bin link it
// made for a checkout and does not redo it when package.json changes.
import './shoal.mjs'
