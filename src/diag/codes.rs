//! Stable diagnostic codes, grouped by phase.
//!
//! | range | phase |
//! |---|---|
//! | E1xx | syntax |
//! | E2xx / W2xx | names, scopes, keys, placeholders |
//! | E3xx | types, units, values |
//! | E4xx | files: includes, CSV tables, I/O |
//! | E5xx | dependency graph, datasets, clustering |
//! | E6xx | sites and resource limits |
//! | E7xx / W7xx | coverage |
//! | E8xx | backends |
//! | E9xx | operating a submitted campaign (`bpsc submit`, `cancel`, `hold`, `release`, `priority`) |
//!
//! A code is never reused for a different problem.  Every entry carries an example that
//! triggers it; `tests/explain.rs` checks that it does.  An example is written to
//! a file named `example.bps`, next to nothing else.  The E9xx examples are campaigns that
//! are compiled and then operated on (`--operate=OP` in their arguments) with a scripted
//! engine (`crate::operate::explain_example`): their codes come from running a command,
//! not from checking a file.

use super::Severity;

pub struct CodeInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub explanation: &'static str,
    pub example: &'static str,
    /// Extra arguments the example needs (e.g. `--backend slurm`).
    pub example_args: &'static [&'static str],
}

pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

macro_rules! codes {
    ($( $code:literal $sev:ident $title:literal { $expl:literal } example $ex:literal $( args [$($arg:literal),*] )? ;)*) => {
        pub static CODES: &[CodeInfo] = &[
            $( CodeInfo {
                code: $code,
                severity: Severity::$sev,
                title: $title,
                explanation: $expl,
                example: $ex,
                example_args: &[$($($arg),*)?],
            }, )*
        ];
    };
}

codes! {
"E100" Error "syntax error" {
"The parser expected one thing and found another. The label says what was expected at that
point. Statements are separated by newlines, `,` or `;`; bodies are enclosed in `{ }`."
} example "bps 1\ndefaults {\n  memory = = 4GiB\n}\n";

"E101" Error "unterminated string" {
"A string opened with `\"` was not closed on the same line. Strings cannot span lines; close
the quote, or escape an inner quote as `\\\"`."
} example "bps 1\ndefaults {\n  queue = \"long\n}\n";

"E102" Error "unclosed delimiter" {
"A `{`, `(` or `[` was never closed. The primary label points at the opening delimiter; the
secondary label shows where the file (or the enclosing block) ended."
} example "bps 1\ndefaults {\n  memory = 4GiB\n";

"E103" Error "bad literal" {
"A number, size or duration is malformed. Sizes are written without a space and with one of
the units B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000):
`4GiB`. Durations use s, m, h, d and may be combined: `1h30m`."
} example "bps 1\ndefaults {\n  memory = 4 Gb\n}\n";

"E104" Error "missing or malformed version header" {
"Every .bps file, included files too, starts with its language version: `bps 1` or
`bps 1.1`. It lets a future bpsc read old campaigns the way they were meant. Version 1.0 is
written `bps 1`, not `bps 1.0`."
} example "defaults {\n  memory = 4GiB\n}\n";

"E105" Error "unsupported language version" {
"This bpsc understands language versions 1 and 1.1."
} example "bps 2\n";

"E106" Error "invalid character" {
"The character cannot start any token. Identifiers are ASCII letters, digits and `_`;
other text belongs in a string."
} example "bps 1\ndefaults {\n  memory = 4GiB @\n}\n";

"E107" Error "nesting too deep" {
"Brackets are nested deeper than bpsc accepts (64 levels). No real campaign needs this;
the limit keeps the checker's memory and stack bounded on any input."
} example "bps 1\ndefaults { env { X = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] } }\n";

"E108" Error "unexpected closing delimiter" {
"A `}`, `)` or `]` has no matching opener."
} example "bps 1\ndefaults {\n  memory = 4GiB\n}\n}\n";

"E109" Error "invalid escape in string" {
"Inside strings, `\\` may be followed by `\"`, `\\`, `n` or `t` only. Write a literal brace
as `{{` or `}}`."
} example "bps 1\ndefaults {\n  queue = \"a\\qb\"\n}\n";

"E201" Error "undefined name" {
"The name is not defined in this file or in any file it includes. The help suggests the
closest defined name of the right kind."
} example "bps 1\npipeline p {\n  step a { run = \"true\" }\n  step b after aa { run = \"true\" }\n}\n";

"E202" Error "duplicate definition" {
"Two definitions of the same kind share a name. The secondary label points at the first one;
rename or remove one of them. Also: a name listed twice in one list, a key set twice in one
block, a second `final` job in a campaign, a `subset` or a `final` job with the name of a
step."
} example "bps 1\ndimension band = [\"g\", \"r\"]\ndimension band = [\"i\"]\n";

"E203" Error "unknown key" {
"The key is not a setting bpsc knows. Execution settings are memory, cpus, disk, walltime,
retries, retry_unless_exit, memory_growth, priority, queue, partition, account, qos, site,
sites, hosts, avoid_hosts, avoid_sites, on_failure, software, max_running (max_jobs in
version 1) and env; version 1.1 adds memory_growth_on, max_memory, unexpected and pass_env.
Each kind of block adds its own keys (`bpsc explain E204` lists them)."
} example "bps 1\ndefaults {\n  memroy = 4GiB\n}\n";

"E204" Error "not allowed in this scope" {
"The key or statement is valid, but not in this kind of block. Site limits (max_cpus,
max_walltime, and max_memory, which elsewhere is a step's own cap) belong in a `site`; `run`,
`inputs` and `outputs` in a pipeline's `step` (`run` and `when` in a `final` job);
`coverage`, `use`, `cluster`, `notify` and `final` in a `campaign`; `step` definitions and
`subset`s in a `pipeline`; `equal` at the top level; `unexpected` in a campaign or a step;
`split_by` and `max_quanta` in a cluster."
} example "bps 1\ndefaults {\n  run = \"echo hi\"\n}\n";

"E205" Error "missing required setting" {
"Something the compiler needs is not set: a campaign needs `use` and `coverage`, a step in a
pipeline needs `run`, an archived dataset needs `archive`, a `final` job needs `run`, a
`subset` at least one step, and a partitioned cluster both `split_by` and `max_quanta`."
} example "bps 1\npipeline p {\n  step a over () { }\n}\n";

"E206" Error "unknown placeholder" {
"A `{name}` in a template is not one bpsc can fill. In `run`: the step's own dimensions,
`{config.KEY}`, `{campaign}`, `{step}`, `{user}`, `{site}`, `{attempt}`, `{inputs}`,
`{outputs}`, `{data_id}`, `{job}`, and (language 1.1) `{inputs.NAME}` / `{outputs.NAME}` for
one input or output dataset NAME of the step. A `final` job's `run` has the placeholders of a
step over `()`. In dataset templates: the dataset's dimensions and `{campaign}`, `{user}`,
`{site}`. Write literal braces as `{{` and `}}`."
} example "bps 1\ndimension visit = 1..3\npipeline p {\n  step a over (visit) { run = \"proc {vist}\" }\n}\n";

"E207" Error "step dimension not determined" {
"A step runs over a dimension that the campaign's coverage does not contain, that no declared
relation links to it, and that has no domain of its own. Declare a relation that links it to
the coverage's dimensions (e.g. `relation overlap(visit, detector, tract, patch) = table(..)`)
or give the dimension a domain."
} example "bps 1\ndimension visit = 1..3\ndimension tract\npipeline p {\n  step a over (tract) { run = \"true\" }\n}\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"E208" Error "config inheritance cycle" {
"A config `extends` itself, directly or through others."
} example "bps 1\npipeline p {\n  config a extends b { }\n  config b extends a { }\n  step s { run = \"true\" }\n}\n";

"E209" Error "ambiguous step name" {
"Two pipelines used by the campaign define a step with this name. Qualify the override as
`step PIPELINE.STEP { ... }`."
} example "bps 1\npipeline p { step s { run = \"true\" } }\npipeline q { step s { run = \"true\" } }\ncampaign c {\n  use p\n  use q\n  coverage = []\n  step s { memory = 1GiB }\n}\n";

"E210" Error "pipeline used twice" {
"A campaign uses each pipeline once; pick one config per pipeline."
} example "bps 1\npipeline p { config a { } step s { run = \"true\" } }\ncampaign c {\n  use p with a\n  use p with a\n}\n";

"E211" Error "bad dimension equality" {
"An `equal A = B` declaration (language 1.1) cannot hold: it names one dimension twice, or two
dimensions whose values are of different kinds (integers and strings are never equal), or
whose declared domains have no value in common (equal, they would leave no data ID). Both
names must be dimensions (E201 otherwise)."
} example "bps 1.1\ndimension visit = 1..3\nequal visit = visit\n";

"E212" Error "feature needs `bps 1.1`" {
"The file starts with `bps 1` but uses a feature of language version 1.1: `equal`, `final`,
`subset`, the keys `memory_growth_on`, `max_running`, `unexpected`, `pass_env`, `split_by`,
`max_quanta`, `max_memory` outside a `site`, or the placeholders `{inputs.NAME}` and
`{outputs.NAME}`. Version 1 files keep their exact version 1 meaning, so a 1.1 feature must be
asked for: change the first line to `bps 1.1` (every version 1 file is a valid 1.1 file). The
version is per file: a `bps 1` library may be included by a `bps 1.1` campaign."
} example "bps 1\ndefaults {\n  memory_growth_on = any\n}\n";

"W201" Warning "unused definition" {
"A dimension, relation, dataset, site or pipeline is defined but nothing refers to it."
} example "bps 1\ndimension band = [\"g\"]\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"W202" Warning "redundant dimension equality" {
"An `equal A = B` declaration repeats what earlier ones already say: the same pair again, the
pair the other way round, or a pair made equal through others (equality is symmetric and
transitive). Remove it; the secondary labels show the declarations that imply it."
} example "bps 1.1\ndimension visit = 1..3\ndimension exposure\nequal visit = exposure\nequal exposure = visit\n";

"W203" Warning "deprecated spelling" {
"`max_jobs` is the language 1.0 spelling of `max_running`. In a `bps 1.1` file write
`max_running`; `max_jobs` still works and means the same (both name one setting, so writing
both in one block is E202). Version 1 files keep `max_jobs` without a warning."
} example "bps 1.1\ndefaults {\n  max_jobs = 10\n}\n";

"W204" Warning "config override adds a key" {
"A `--set config.KEY=VALUE` (or `--set PIPELINE.config.KEY=VALUE`) names a key that the config
it applies to does not define. Configs are free-form science parameters, so the key is
added and `{config.KEY}` sees it; but a misspelt key would override nothing, so bpsc says so
(with the closest defined key when there is one)."
} example "bps 1.1\ndimension visit = 1..3\npipeline p {\n  config c { pipeline_yaml = \"drp.yaml\" }\n  step a over (visit) { run = \"pipetask -p {config.pipeline_yaml}\" }\n}\ncampaign k {\n  use p with c\n  coverage = visit\n}\n" args ["--set=config.pipline_yaml=\"rc2.yaml\""];

"W205" Warning "settings for an unknown step ignored" {
"With `--allow-unknown-steps`, a campaign's `step X { }` block or a `--set X.KEY=VALUE` for a
step the campaign does not have is ignored with this warning instead of refused (E201).
Operators' configurations outlive pipeline versions: a step dropped from the pipeline keeps
its tuning in the campaign file for a while. Without the option a misspelt step name is
an error, because its settings would silently apply to nothing."
} example "bps 1.1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign k {\n  use p\n  coverage = visit\n  step dropped { memory = 8GiB }\n}\n" args ["--allow-unknown-steps"];

"E301" Error "type mismatch" {
"The value has the wrong type for this key: e.g. a string where a size is expected, or a
list where a single value is expected."
} example "bps 1\ndefaults {\n  cpus = \"four\"\n}\n";

"E302" Error "wrong unit" {
"The value has a unit of the wrong kind: a duration where a size is expected, or the
reverse. Sizes: B KiB MiB GiB TiB KB MB GB TB. Durations: s m h d."
} example "bps 1\ndefaults {\n  memory = 2h\n}\n";

"E303" Error "value out of range" {
"The value is of the right type but outside what bpsc or any engine accepts: cpus >= 1,
retries 0..=100, exit codes 0..=255, memory_growth >= 1.0, priority -1000..=1000,
cluster size >= 1, non-empty ranges."
} example "bps 1\ndefaults {\n  cpus = 0\n}\n";

"E304" Error "invalid choice" {
"The key takes one of a fixed set of words; the help lists them."
} example "bps 1\ncampaign c {\n  order = sideways\n}\n";

"E305" Error "dimension mismatch" {
"A union or difference of coverages needs both sides over the same dimensions; a relation's
columns must match its declared dimensions; a dataset's dimensions must match the step that
produces it."
} example "bps 1\ndimension visit = 1..3\ndimension band = [\"g\"]\ncoverage bad = visit + band\n";

"E306" Error "bad predicate" {
"A `where` predicate names a dimension the coverage does not have, or compares a dimension
with a value of the other kind (integers and strings never compare)."
} example "bps 1\ndimension visit = 1..3\ncoverage c = visit where band == \"g\"\n";

"E401" Error "cannot read file" {
"A campaign file or an included file cannot be read: it is missing, unreadable, or a
directory. Include paths are relative to the including file."
} example "bps 1\ninclude \"sites/missing.bps\"\n";

"E402" Error "include cycle" {
"Files include each other in a cycle. The notes list the chain of includes."
} example "bps 1\ninclude \"example.bps\"\n";

"E403" Error "file is not UTF-8" {
"Campaign files and CSV tables are UTF-8 text. The label points at the first byte that is
not valid UTF-8."
} example "bps 1\n# written in Latin-1: caf\u{e9}\n";

"E404" Error "table file missing or unreadable" {
"A `table(\"...\")` names a CSV file that cannot be read. Paths are relative to the file that
declares the table."
} example "bps 1\nrelation exposure(visit, band) = table(\"data/exposures.csv\")\n";

"E405" Error "table column missing" {
"The CSV header lacks a column the declaration needs. The first row of a table names its
columns; they must include every dimension of the relation (or the named column)."
} example "bps 1\ndimension visit = table(\"example.bps\").visit\n";

"E406" Error "bad table value" {
"A CSV row has the wrong number of fields, an empty field, a value holding a NUL byte (which
no shell command, argument or file name can carry), or a value of the other kind than the
rest of its column (integers versus strings). The label gives row and column."
} example "bps 1\ndimension visit = table(\"data/visits.csv\").visit\n";

"E407" Error "file too large" {
"Campaign files may be at most 16 MiB, CSV tables at most 1 GiB. Larger inputs are almost
certainly a mistake (a data file passed as a campaign); move data into tables."
} example "bps 1\ninclude \"huge.bps\"\n";

"E408" Error "pass_env variable not set" {
"A `pass_env` list names a variable that the environment bpsc runs in does not set. The jobs
see the values the named variables have when the campaign is compiled (they are recorded in
the submit directory), so an unset one is an error, not an empty value. Export it before
running bpsc, or remove it from `pass_env`. The language server does not check this (an
editor's environment is not the submitting shell)."
} example "bps 1.1\ndefaults {\n  pass_env = [\"BPSC_EXAMPLE_DIR\"]\n}\n" args ["--env"];

"E409" Error "cannot write the output" {
"bpsc could not write a file of the output (the submit directory, the IR): the parent
directory is missing or not writable, the disk is full, or a path component is a file.
Nothing is left behind: output is written to a temporary sibling and renamed into place
only when complete."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=slurm", "--out=/proc/bpsc-cannot-write/out"];

"E501" Error "dependency cycle" {
"Steps depend on each other in a cycle, through `after`, dataset flow or `order`
constraints. The labels show the whole cycle, one edge each."
} example "bps 1\npipeline p {\n  step a after b { run = \"true\" }\n  step b after a { run = \"true\" }\n}\n";

"E502" Error "dataset has no producer and no source" {
"A step consumes a dataset that no step of the campaign produces, and the dataset declares no
`source` to read it from. Add a `source = \"...\"` URL template, produce it in an earlier
step, or mark the input `optional(...)`."
} example "bps 1\ndataset raw(visit)\ndimension visit = 1..3\npipeline p {\n  step a over (visit) { inputs = [raw], run = \"true\" }\n}\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"E503" Error "dataset produced twice" {
"Two steps declare the same dataset as output; every dataset has one producer."
} example "bps 1\npipeline p {\n  step a { outputs = [x], run = \"true\" }\n  step b { outputs = [x], run = \"true\" }\n}\n";

"E504" Error "cluster creates a cycle" {
"Grouping these quanta into one job would make the job depend on itself through a quantum
outside the cluster. The notes show the cycle; split the cluster or change its `by`."
} example "bps 1\ndimension v = 0..3\npipeline p {\n  step a over (v) { run = \"true\" }\n  step b after a { run = \"true\" }\n  step c over (v) after b { run = \"true\" }\n}\ncampaign k {\n  use p\n  coverage = v\n  cluster bad { steps = [a, c], by = [v] }\n}\n";

"E505" Error "dataset dimensions do not match its step" {
"A step produces a dataset declared over other dimensions than the step's own."
} example "bps 1\ndimension visit = 1..3\ndataset calexp(visit)\npipeline p {\n  step a over () { outputs = [calexp], run = \"true\" }\n}\n";

"E506" Error "bad cluster" {
"A cluster names a step twice, a step that another cluster already holds, or groups by a
dimension that one of its steps does not have (a dimension declared `equal` to one of the
step's counts as the step's). A partitioned cluster (language 1.1) splits the groups of a
`by` cluster: `split_by` and `max_quanta` need `by`, and a `split_by` dimension must be a
dimension of every step of the cluster and not one of `by` (a `by` group holds one value of
it, so there would be nothing to split)."
} example "bps 1\ndimension visit = 1..3\ndimension band = [\"g\", \"r\"]\npipeline p {\n  step a over (visit) { run = \"true\" }\n}\ncampaign c {\n  use p\n  coverage = visit\n  cluster k { steps = [a], by = [band] }\n}\n";

"W506" Warning "a split_by value has more quanta than max_quanta" {
"A partitioned cluster (`split_by`, `max_quanta`) cuts each `by` group into jobs of at most
`max_quanta` quanta, but never splits one `split_by` value across two jobs: a value with more
quanta than that stays one job, larger than asked.  Raise `max_quanta`, or split by a finer
dimension."
} example "bps 1.1\ndimension visit = 1..3\ndimension detector = 0..4\npipeline p {\n  step a over (visit, detector) { run = \"true\" }\n  step b over (visit, detector) after a { run = \"true\" }\n}\ncampaign c {\n  use p\n  coverage = visit * detector\n  cluster k { steps = [a, b], by = [visit], split_by = [detector], max_quanta = 1 }\n}\n";

"E601" Error "site both chosen and avoided" {
"The resolved `site` (or every entry of `sites`) is also listed in `avoid_sites`. The labels
show where each was set."
} example "bps 1\nsite s { backend = slurm }\ndefaults { site = s, avoid_sites = [s] }\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"E602" Error "no eligible site" {
"After `avoid_sites`, none of the step's candidate sites is left, or no site is chosen at all
for a campaign that has steps."
} example "bps 1\nsite s { backend = slurm }\ndefaults { sites = [s], avoid_sites = [s] }\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"E603" Error "over a site limit" {
"A resolved setting passes the chosen site's limit (max_memory, max_cpus, max_walltime), or a
step's own `max_memory` (language 1.1) passes the site's `max_memory`. The notes show the
override chain that produced the value."
} example "bps 1\nsite s { backend = slurm, max_memory = 8GiB }\ndefaults { site = s, memory = 16GiB }\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"E604" Error "memory over the step's max_memory" {
"A step's resolved `memory` (its first attempt's request) is above its own resolved
`max_memory`, the cap of memory growth on retries (language 1.1). The cap cannot be below the
first request: raise `max_memory` or lower `memory`. A step's `max_memory` above the site's
`max_memory` is E603."
} example "bps 1.1\ndefaults { memory = 8GiB }\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\", max_memory = 4GiB } }\ncampaign c {\n  use p\n  coverage = visit\n}\n";

"E701" Error "empty coverage" {
"The campaign's coverage, or a step's universe, has no data IDs."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit where visit > 10\n}\n";

"W701" Warning "large coverage" {
"The coverage (or a step's quanta) passes the warning threshold (1,000,000 data IDs by default,
`--coverage-warn N`). The message states the count; check that the coverage is meant."
} example "bps 1\ndimension visit = 0..2000\ndimension detector = 0..1000\npipeline p { step a over (visit, detector) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit * detector\n}\n";

"E801" Error "feature not expressible by the backend" {
"The chosen backend has no construct for a setting, or a value it cannot carry safely. The
message names the alternative: e.g. Slurm's `--nodelist` asks for all listed hosts at once,
so `hosts` with several hosts cannot mean \"any one of these\" there; list one host, use
`avoid_hosts`, or a partition."
} example "bps 1\ndimension detector = 0..4\nsite cc { backend = slurm }\npipeline calib {\n  step bias over (detector) {\n    run   = \"make_bias {detector}\"\n    hosts = [\"node01\", \"node02\"]\n  }\n}\ncampaign nightly {\n  use calib\n  coverage = detector\n}\n" args ["--backend=slurm"];

"W801" Warning "setting ignored by the backend" {
"The chosen backend has no construct for a setting the campaign uses, and the campaign still
runs correctly without it: the setting is ignored for this backend. The message says what is
lost and the help names the alternative (another backend, or a setting that does the job).
`backends/README.md` has the whole capability table: every feature for every backend.
`--deny warnings` turns this into a failure for CI."
} example "bps 1\ndimension detector = 0..4\npipeline calib {\n  step bias over (detector) {\n    run      = \"make_bias {detector}\"\n    priority = 10\n  }\n}\ncampaign nightly {\n  use calib\n  coverage = detector\n}\n" args ["--backend=nextflow"];

"E802" Error "generated names collide" {
"Two names differ in the campaign but become equal after sanitising for the engine (job names,
file names). Rename one of them."
} example "bps 1\ndimension v = 0..3\npipeline p {\n  step join over (v) { run = \"true\" }\n}\ncampaign k {\n  use p\n  coverage = v\n}\n";

"E899" Error "internal error" {
"bpsc failed in a way that is its own fault, not the campaign's (a template of an engine's
files did not render). Nothing was written. Please report it with the campaign file and the
command line; `bpsc compile --emit ir` still works and shows what lowering produced."
} example "bps 1\n" args ["--internal-error"];

"E901" Error "the campaign's state does not allow this operation" {
"`bpsc cancel`, `hold`, `release` and `priority` act on what a submission put in the engine's
queue: a directory that was never submitted, whose jobs have all left the queue, or that is
not held (for `release`) has nothing to act on. A resubmission is refused while the previous
submission still has jobs in the queue. `bpsc status DIR` shows where the campaign stands."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=slurm", "--operate=cancel"];

"E902" Error "already submitted" {
"The directory was submitted before (`operations.jsonl` records it, or the engine's own files
show it). Submitting the same directory twice would run every job twice and mix their
records. `bpsc submit --resubmit DIR` submits it again on purpose, the way the engine
continues a run: HTCondor and Pegasus run the rescue DAG (only what is left), Nextflow runs
with `-resume`, Slurm runs every job again. `bpsc restart DIR` writes a new directory with
only what is left, on every engine."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=htcondor", "--operate=submit-twice"];

"E903" Error "not possible on this engine" {
"The engine has no way to do what was asked: Nextflow cannot pause a run, hold or release it,
or change its jobs' priority. The help says what to do instead (for Nextflow: cancel, then
`bpsc submit --resubmit`, which resumes with `nextflow run -resume`)."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=nextflow", "--operate=hold"];

"E904" Error "engine tool not found" {
"The engine's command-line tool is not on PATH: bpsc runs the engine's own tools
(condor_submit_dag, sbatch/scontrol/scancel/squeue, pegasus-plan/pegasus-run/pegasus-remove,
nextflow) and must run where they are: an HTCondor access point, a Slurm login node. The
message names the tool and what to install."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=htcondor", "--operate=submit-without-tools"];

"E905" Error "engine command failed" {
"An engine command exited with an error. The message shows the exact command and what it
printed; `operations.jsonl` in the submit directory keeps both. Slurm, for example, lets only
its operators raise a job's priority: a user's `bpsc priority` can only lower it."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=slurm", "--operate=priority-denied"];

"E906" Error "the engine did not confirm in time" {
"bpsc waits until the engine confirms an operation (`cancel`: the campaign's jobs have left
the queue; `hold`: its pending jobs are held; `release`: none is held), for `--wait SECONDS`
(300 by default). The request was sent; the engine may still be working on it. Look again
with `bpsc status DIR` or the engine's own tools."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=slurm", "--operate=cancel-unconfirmed"];

"E907" Error "resource not settable on release" {
"`bpsc release --set KEY=VALUE` changes the resources of the campaign's queued jobs where the
engine can change a queued job: memory, cpus, disk, walltime, and on Slurm partition (or
queue), account and qos. A key that is not a resource, a value of the wrong type, or a resource
the engine fixes at submission (HTCondor has no partitions; its accounting group is set when a
job is submitted) is refused before anything changes. `bpsc restart DIR --set KEY=VALUE` writes
a new submit directory with any setting."
} example "bps 1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n" args ["--backend=htcondor", "--operate=release-set-qos"];
}

/// Extra files an example needs, besides `example.bps`.
///
/// E403 and E407 need inputs a `&str` cannot hold or that are too big to ship; their
/// examples are prepared by [`crate::cli::explain_example`] (Latin-1 bytes; a 17 MiB file).
pub fn example_files(code: &str) -> &'static [(&'static str, &'static str)] {
    match code {
        "E406" => &[("data/visits.csv", "visit\n903334\n903336\nr-0042\n903338\n")],
        _ => &[],
    }
}
