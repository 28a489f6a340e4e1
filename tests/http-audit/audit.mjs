// Runs the GraphQL-over-HTTP conformance audit of `graphql-http` against a running server.
//
//   AUDIT_URL=http://127.0.0.1:8080/graphql node audit.mjs
//
// Prints one line per audit and a summary. Exits 1 when a MUST fails (status "error"), so CI
// breaks on non-conformance; SHOULD warnings and MAY notices are reported but do not fail.
import { auditServer } from 'graphql-http';

const url = process.env.AUDIT_URL;
if (!url) {
  console.error('AUDIT_URL is not set (e.g. AUDIT_URL=http://127.0.0.1:8080/graphql)');
  process.exit(2);
}

const results = await auditServer({ url });

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status] = (counts[r.status] ?? 0) + 1;
  const reason = r.status === 'ok' ? '' : ` — ${r.reason}`;
  console.log(`${r.status.padEnd(6)} ${r.id} ${r.name}${reason}`);
}

console.log(
  `\n${results.length} audits: ${counts.ok} ok, ${counts.error} MUST failures, ` +
    `${counts.warn} SHOULD warnings, ${counts.notice} MAY notices`,
);
process.exit(counts.error > 0 ? 1 : 0);
