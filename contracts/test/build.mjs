// Compiles contracts/test/*.sol (contracts that break ERC-7562 rules on purpose, for the
// bundler's tests) with the same solc-js settings as ../build.mjs, into test/artifacts/.
// `node build.mjs --check` rebuilds in memory and fails if any artifact on disk differs.
import { createRequire } from "node:module";
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(root, "..", "package.json"));
const solc = require("solc");

const nodeModules = join(root, "..", "node_modules");
const artifactsDir = join(root, "artifacts");
const check = process.argv.includes("--check");

// Code-unit order, not localeCompare: the output must not depend on the machine's locale.
const byName = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);

const format = (contractName, abi, bytecode, deployedBytecode) =>
  JSON.stringify({ contractName, abi, bytecode, deployedBytecode }, null, 2) + "\n";

function compile() {
  const files = readdirSync(root).filter((f) => f.endsWith(".sol")).sort();
  const sources = Object.fromEntries(
    files.map((f) => [`test/${f}`, { content: readFileSync(join(root, f), "utf8") }]),
  );
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 1000 },
      evmVersion: "cancun",
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const findImports = (path) => {
    const file = join(nodeModules, path);
    return existsSync(file) ? { contents: readFileSync(file, "utf8") } : { error: `not found: ${path}` };
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) console.error(d.formattedMessage ?? d.message);
  if (diagnostics.some((d) => d.severity === "error")) process.exit(1);

  const out = new Map();
  for (const file of Object.keys(sources)) {
    for (const [name, c] of Object.entries(output.contracts[file] ?? {}).sort(byName)) {
      if (!c.evm.bytecode.object) continue;
      out.set(name, format(name, c.abi, "0x" + c.evm.bytecode.object, "0x" + c.evm.deployedBytecode.object));
    }
  }
  return new Map([...out].sort(byName));
}

const artifacts = compile();
if (check) {
  const stale = [...artifacts].filter(([name, text]) => {
    const file = join(artifactsDir, `${name}.json`);
    return !existsSync(file) || readFileSync(file, "utf8") !== text;
  });
  for (const [name] of stale) console.error(`stale or missing: test/artifacts/${name}.json`);
  if (stale.length) {
    console.error("run `node test/build.mjs` to regenerate");
    process.exit(1);
  }
  console.log("test artifacts are fresh");
} else {
  mkdirSync(artifactsDir, { recursive: true });
  for (const [name, text] of artifacts) writeFileSync(join(artifactsDir, `${name}.json`), text);
  console.log(`wrote ${artifacts.size} test artifacts: ${[...artifacts.keys()].join(", ")}`);
}
