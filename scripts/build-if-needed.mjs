// Builds dist/ when any TypeScript source is newer than the last build, so
// `npm start`, `npm run bench` and the tests that spawn the CLI always run current code.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const marker = path.join(root, 'dist', '.build-stamp');

function newest(folder) {
  let latest = 0;
  if (!existsSync(folder)) return latest;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(full));
    else if (/\.(ts|sql|json)$/.test(entry.name)) latest = Math.max(latest, statSync(full).mtimeMs);
  }
  return latest;
}

const sources = Math.max(
  newest(path.join(root, 'src')),
  newest(path.join(root, 'bench')),
  newest(path.join(root, 'test', 'support')),
  statSync(path.join(root, 'package.json')).mtimeMs,
  statSync(path.join(root, 'tsconfig.json')).mtimeMs,
  statSync(path.join(root, 'tsconfig.build.json')).mtimeMs,
);
const built = existsSync(marker) ? statSync(marker).mtimeMs : 0;
if (sources > built) {
  process.stderr.write('building exai (tsc)…\n');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(marker, new Date().toISOString());
}
