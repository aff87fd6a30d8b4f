// Compiles the Solidity of this folder with solc-js and writes ABI + bytecode JSON artifacts:
//   src/*.sol  -> artifacts/       (our contracts, plus the npm EntryPoint artifacts we deploy)
//   test/*.sol -> test/artifacts/  (contracts that break ERC-7562 rules on purpose, for tests)
// `node build.mjs --check` rebuilds in memory and fails if any artifact on disk differs, so CI
// catches sources edited without re-running the build.
import { createRequire } from "node:module";
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = dirname(fileURLToPath(import.meta.url));
const nodeModules = join(root, "node_modules");
const check = process.argv.includes("--check");

// The Rust side deploys these straight from the npm package, so ship its exact bytecode
// rather than recompiling (our settings would give different code).
const AA_ARTIFACTS = ["EntryPoint", "EntryPointSimulations", "SimpleAccount", "SimpleAccountFactory"];

// Each unit compiles on its own, so a test contract never changes a production artifact.
const UNITS = [
  { sources: "src", artifacts: "artifacts", npmArtifacts: AA_ARTIFACTS },
  { sources: "test", artifacts: "test/artifacts", npmArtifacts: [] },
];

// Code-unit order, not localeCompare: the output must not depend on the machine's locale.
const byName = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);

const format = (contractName, abi, bytecode, deployedBytecode) =>
  JSON.stringify({ contractName, abi, bytecode, deployedBytecode }, null, 2) + "\n";

function compile(unit) {
  // Sorted, and keyed by a folder-relative name, so metadata (and hence bytecode) is stable across machines.
  const dir = join(root, unit.sources);
  const files = readdirSync(dir).filter((f) => f.endsWith(".sol")).sort();
  const sources = Object.fromEntries(
    files.map((f) => [`${unit.sources}/${f}`, { content: readFileSync(join(dir, f), "utf8") }]),
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
  // Package imports (@openzeppelin/..., @account-abstraction/...) come from node_modules.
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
      // Interfaces and abstract contracts have no bytecode; they are not deployable artifacts.
      if (!c.evm.bytecode.object) continue;
      out.set(name, format(name, c.abi, "0x" + c.evm.bytecode.object, "0x" + c.evm.deployedBytecode.object));
    }
  }
  for (const name of unit.npmArtifacts) {
    const a = JSON.parse(readFileSync(join(nodeModules, "@account-abstraction/contracts/artifacts", `${name}.json`), "utf8"));
    out.set(name, format(a.contractName, a.abi, a.bytecode, a.deployedBytecode));
  }
  return new Map([...out].sort(byName));
}

let stale = 0;
for (const unit of UNITS) {
  const artifacts = compile(unit);
  const outDir = join(root, unit.artifacts);
  if (check) {
    for (const [name, text] of artifacts) {
      const file = join(outDir, `${name}.json`);
      if (!existsSync(file) || readFileSync(file, "utf8") !== text) {
        console.error(`stale or missing: ${unit.artifacts}/${name}.json`);
        stale += 1;
      }
    }
  } else {
    mkdirSync(outDir, { recursive: true });
    for (const [name, text] of artifacts) writeFileSync(join(outDir, `${name}.json`), text);
    console.log(`${unit.artifacts}: wrote ${artifacts.size} (${[...artifacts.keys()].join(", ")})`);
  }
}
if (check) {
  if (stale) {
    console.error("run `node build.mjs` in contracts/ to regenerate");
    process.exit(1);
  }
  console.log("artifacts are fresh");
}
