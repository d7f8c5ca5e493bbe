// nf-sim.groovy: run a bpsc-generated Nextflow main.nf with plain Groovy (2.4+), on a
// minimal model of the Nextflow runtime, to check what its channel wiring does.
//
//   groovy nf-sim.groovy SUBMIT OUT.tsv [--fail TAG=CODE[@ATTEMPT,...]]... [--run BPSC] [--scratch DIR]
//
// The generated script is executed as written (its functions, process bodies, directive
// closures, GString scripts and workflow block), against this model:
// * channels are lists, evaluated eagerly in program order; each item carries the set of
//   tasks whose completion produced it (its "tokens");
// * join, combine(by:), mix, map, filter, groupTuple (with groupKey sizes), splitCsv and
//   Channel.fromPath behave like Nextflow's operators (join pairs the first unmatched items
//   of a key, FIFO; groupTuple emits only complete groups; unmatched items are dropped);
// * a process runs one task per input item, in order; a task emits its output value with
//   one token, its own tag; a failed task is retried or not by evaluating its
//   errorStrategy closure with task.attempt and task.exitStatus, as Nextflow does
//   ('retry' beyond maxRetries terminates).
// So the tokens of a task's input are exactly the tasks its start waited for.
//
// Exit codes: by default every task succeeds, except those named with --fail (exit CODE,
// on the listed attempts or on all; several --fail for one task: the first that names the
// attempt).  With --run BPSC, each task's script is really run
// with `bash -ue` (params.bpsc = BPSC) and its exit status is used: an end-to-end run on
// this machine, one task at a time.
//
// OUT.tsv gets one line per task:
//   task  PROCESS  TAG  GROUP  INDEX  STATUS  ATTEMPTS  MEMORY_PER_ATTEMPT  TOKENS
// (STATUS: ok | ignored | terminated), then `exec` lines for the commands run by
// workflow.onComplete/onError (run for real only with --run), then `end  SUCCESS  IGNORED`.
import org.codehaus.groovy.control.CompilerConfiguration

class Item {
    def v
    Set<String> tok
    Item(v, Set<String> tok) { this.v = v; this.tok = tok }
}

class GKey {
    def target
    int size
    GKey(target, int size) { this.target = target; this.size = size }
    boolean equals(Object o) { o instanceof GKey ? target.equals(((GKey) o).target) : target.equals(o) }
    int hashCode() { target.hashCode() }
    String toString() { target.toString() }
}

class Ch {
    List<Item> items = []
    Ch(List<Item> items) { this.items = items }

    static List split(v) { v instanceof List ? [v[0], v.size() > 1 ? v[1..-1] : []] : [v, []] }
    static def pack(List l) { l.size() == 1 ? l[0] : l }

    Ch map(Closure c) { new Ch(items.collect { new Item(c.call(it.v), it.tok) }) }
    Ch filter(Closure c) { new Ch(items.findAll { c.call(it.v) as boolean }) }
    Ch mix(Ch... others) {
        def all = new ArrayList<Item>(items)
        others.each { all.addAll(it.items) }
        new Ch(all)
    }
    Ch join(Ch other) {
        def left = new LinkedHashMap<Object, List<Item>>()
        items.each { i -> def kv = split(i.v); left.get(kv[0], []) << i }
        def out = []
        other.items.each { j ->
            def kv = split(j.v)
            def q = left.get(kv[0])
            if (q) {
                def i = q.remove(0)
                def ikv = split(i.v)
                out << new Item(pack([kv[0]] + ikv[1] + kv[1]), i.tok + j.tok)
            }
        }
        new Ch(out)
    }
    Ch combine(Map opts, Ch other) {
        if (opts.by != 0) throw new IllegalArgumentException("sim: combine only with by: 0")
        def right = new LinkedHashMap<Object, List<Item>>()
        other.items.each { j -> right.get(split(j.v)[0], []) << j }
        def out = []
        items.each { i ->
            def ikv = split(i.v)
            right.get(ikv[0], []).each { j -> out << new Item(pack([ikv[0]] + ikv[1] + split(j.v)[1]), i.tok + j.tok) }
        }
        new Ch(out)
    }
    Ch groupTuple() {
        def groups = new LinkedHashMap<Object, List<Item>>()
        items.each { i -> groups.get(i.v[0], []) << i }
        def out = []
        groups.each { k, list ->
            def key = list[0].v[0]
            int size = key instanceof GKey ? key.size : 0
            if (size > 0 && list.size() != size) return
            int width = list[0].v.size()
            def row = [key]
            for (int f = 1; f < width; f++) row << list.collect { it.v[f] }
            Set<String> tok = new TreeSet<String>()
            list.each { tok.addAll(it.tok) }
            out << new Item(row, tok)
        }
        new Ch(out)
    }
    Ch splitCsv(Map opts) {
        String sep = opts.sep ?: ','
        def out = []
        items.each { i ->
            new File(i.v.toString()).eachLine { line ->
                if (line.length() > 0) out << new Item(line.split(java.util.regex.Pattern.quote(sep), -1) as List, new TreeSet<String>())
            }
        }
        new Ch(out)
    }
}

class ChannelFactory {
    Ch fromPath(Map opts, String path) {
        def f = new File(path)
        if (opts.checkIfExists && !f.exists()) throw new FileNotFoundException("sim: fromPath: no file ${path}")
        new Ch([new Item(f.path, new TreeSet<String>())])
    }
    Ch fromPath(String path) { fromPath([:], path) }
}

class Marker {
    String name
    Marker(String n) { name = n }
    Object asType(Class c) { c == String ? name : 0 }
    String toString() { name }
}

class Recorder extends GroovyObjectSupport {
    static final Set<String> DIRECTIVES = ['tag', 'cpus', 'memory', 'time', 'disk', 'maxRetries', 'errorStrategy', 'queue',
        'maxForks', 'container', 'containerOptions', 'resourceLimits', 'beforeScript', 'clusterOptions', 'label', 'publishDir', 'executor'] as Set
    Map<String, Object> vars
    Map<String, Object> dir = [:]
    List<List> inputs = []
    List<String> outputs = []
    def task
    boolean decl

    def propertyMissing(String name) {
        if (name == 'task' && task != null) return task
        if (vars.containsKey(name)) return vars[name]
        // Script-level names resolve through the owner (the script); any other name is a
        // declaration word (`emit: done`) or, while declaring, an input name.
        if (name in ['params', 'workflow', 'projectDir', 'launchDir', 'baseDir', 'Channel', 'channel'])
            throw new MissingPropertyException(name, Recorder)
        return new Marker(name)
    }
    def methodMissing(String name, Object args) {
        def a = args as List
        if (name in DIRECTIVES) { dir[name] = a.size() == 1 ? a[0] : a; return null }
        if (name == 'val' || name == 'path' || name == 'env') {
            def v = a.find { !(it instanceof Map) }
            if (decl && v instanceof Marker && a.any { it instanceof Map }) outputs << v.name
            return v
        }
        if (name == 'tuple') {
            if (decl) inputs << a.collect { it instanceof Marker ? it.name : it.toString() }
            return null
        }
        throw new MissingMethodException(name, Recorder, args)
    }
}

class SimLog {
    void info(Object m) { System.err.println(m) }
    void warn(Object m) { System.err.println(m) }
}

class WorkflowMeta {
    void onComplete(Closure c) { SimScript.onComplete = c }
    void onError(Closure c) { SimScript.onError = c }
    // `workflow.onComplete = { ... }` inside the entry workflow (WorkflowMetadata.setOnComplete).
    void setOnComplete(Closure c) { SimScript.onComplete = c }
    void setOnError(Closure c) { SimScript.onError = c }
    String getProfile() { 'sim' }
    boolean getSuccess() { !SimScript.terminated }
    Map getStats() { [ignoredCount: SimScript.ignored] }
}

class ProcDef {
    String name
    Closure body
    List<String> inputNames
    String outputName
    Map out = [:]
    def owner
    def call(Ch input) { owner.invoke(this, input) }
}

abstract class SimScript extends Script {
    static Map<String, ProcDef> procs = [:]
    static Map<String, List> failures = [:]
    static String run = null
    static String work = null
    static List<String> lines = []
    static boolean terminated = false
    static int ignored = 0
    static int taskNo = 0
    static Closure onComplete = null
    static Closure onError = null

    def getNextflow() { [enable: [:]] }
    def getWorkflow() { new WorkflowMeta() }
    def workflow(Closure c) { c.call() }
    def groupKey(k, n) { new GKey(k, n as int) }
    def process(ProcDef d) {
        def rec = new Recorder(vars: [:], decl: true)
        def b = d.body.clone()
        b.delegate = rec
        b.resolveStrategy = Closure.DELEGATE_FIRST
        b.call()
        if (rec.inputs.size() != 1) throw new IllegalStateException("sim: process ${d.name}: expected one tuple input")
        d.inputNames = rec.inputs[0]
        d.outputName = rec.outputs ? rec.outputs[0] : null
        procs[d.name] = d
        binding.setVariable(d.name, d)
    }
    def methodMissing(String name, Object args) {
        def a = args as List
        if (a.size() == 1 && a[0] instanceof Closure) return new ProcDef(name: name, body: (Closure) a[0], owner: this)
        if (a.size() == 1 && a[0] instanceof Ch && procs.containsKey(name)) return invoke(procs[name], (Ch) a[0])
        throw new MissingMethodException(name, this.class, args)
    }

    static String eval(Object v, Recorder ctx) {
        if (v instanceof Closure) {
            def c = ((Closure) v).clone()
            c.delegate = ctx
            c.resolveStrategy = Closure.DELEGATE_FIRST
            return c.call()?.toString()
        }
        return v?.toString()
    }

    def invoke(ProcDef d, Ch input) {
        def outItems = []
        for (Item item : input.items) {
            if (terminated) break
            def vals = item.v instanceof List ? item.v : [item.v]
            if (vals.size() != d.inputNames.size())
                throw new IllegalStateException("sim: process ${d.name}: input ${vals} does not match ${d.inputNames}")
            def vars = [:]
            d.inputNames.eachWithIndex { n, i -> vars[n] = vals[i] }
            int attempt = 1
            def mems = []
            def previous = null
            String status = null
            String tag = null
            String group = '-', index = '-'
            while (status == null) {
                // task.previousTrace (Nextflow 24.10+): the previous attempt's trace record, with
                // its requested memory (bytes) and exit status.
                def task = [attempt: attempt, exitStatus: Integer.MAX_VALUE, process: d.name, index: ++taskNo, previousTrace: previous]
                def ctx = new Recorder(vars: vars, task: task, decl: false)
                def b = d.body.clone()
                b.delegate = ctx
                b.resolveStrategy = Closure.DELEGATE_FIRST
                String script = b.call().toString()
                tag = eval(ctx.dir.tag, ctx)
                def memText = eval(ctx.dir.memory, ctx)
                mems << (memText ?: '-').replace(' ', '')
                def m = script =~ /wrap \S+ --group (\S+) --index (\d+)/
                if (m.find()) { group = m.group(1); index = m.group(2) }
                int code = 0
                if (run != null) {
                    def dir = new File(work, "${taskNo}")
                    dir.mkdirs()
                    def before = ctx.dir.beforeScript ? eval(ctx.dir.beforeScript, ctx) + '\n' : ''
                    new File(dir, '.command.sh').text = before + script.stripIndent()
                    def p = ['/bin/bash', '-ue', '.command.sh'].execute(null, dir)
                    p.waitForProcessOutput(new StringBuilder(), new StringBuilder())
                    code = p.exitValue()
                } else if (failures.containsKey(tag)) {
                    def f = failures[tag].find { it[1] == null || attempt in it[1] }
                    if (f != null) code = f[0]
                }
                if (code == 0) { status = 'ok'; break }
                task.exitStatus = code
                def mm = (memText ?: '') =~ /^(\d+) ?MB$/
                previous = [memory: mm.matches() ? (mm.group(1) as long) << 20 : null, exit: code]
                String action = (eval(ctx.dir.errorStrategy, ctx) ?: 'terminate').toLowerCase()
                int maxRetries = (ctx.dir.maxRetries ?: 1) as int
                if (action == 'retry' && attempt <= maxRetries) { attempt++; continue }
                if (action == 'ignore') { status = 'ignored'; ignored++ }
                else { status = 'terminated'; terminated = true }
            }
            lines << ['task', d.name, tag, group, index, status, attempt, mems.join(','), item.tok.sort().join(',')].join('\t')
            if (status == 'ok') outItems << new Item(vars[d.outputName], new TreeSet<String>([tag]))
        }
        d.out = [done: new Ch(outItems)]
        return d.out
    }
}

if (args.length < 2) {
    System.err.println('usage: groovy nf-sim.groovy SUBMIT OUT.tsv [--fail TAG=CODE[@A,B]]... [--run BPSC] [--scratch DIR]')
    System.exit(2)
}
def submit = new File(args[0]).canonicalPath
def out = new File(args[1])
def params = [submit: submit, bpsc: 'bpsc', scratch: null]
for (int i = 2; i < args.length; i++) {
    if (args[i] == '--fail') {
        def m = args[++i] =~ /^([^=]+)=(\d+)(?:@([\d,]+))?$/
        if (!m.matches()) { System.err.println("bad --fail ${args[i]}"); System.exit(2) }
        // Several --fail for one task: the first that names the attempt (or all) wins.
        SimScript.failures.computeIfAbsent(m.group(1)) { [] } << [m.group(2) as int, m.group(3) ? m.group(3).split(',').collect { it as int } : null]
    } else if (args[i] == '--run') {
        SimScript.run = args[++i]
        params.bpsc = SimScript.run
    } else if (args[i] == '--scratch') {
        params.scratch = args[++i]
    } else {
        System.err.println("unknown option ${args[i]}"); System.exit(2)
    }
}
SimScript.work = new File(submit, 'sim-work').path

def cc = new CompilerConfiguration()
cc.scriptBaseClass = SimScript.name
def binding = new Binding()
binding.setVariable('params', params)
binding.setVariable('Channel', new ChannelFactory())
binding.setVariable('projectDir', submit)
binding.setVariable('log', new SimLog())
def shell = new GroovyShell(this.class.classLoader, binding, cc)
def script = shell.parse(new File(submit, 'main.nf'))
script.run()

// The driver's handlers, with their commands recorded (and run only with --run).
def execs = []
script.metaClass.bpscExec = { List cmd, List env ->
    execs << cmd.join(' ')
    if (SimScript.run == null) return 0
    def p = cmd.execute(env, null)
    p.waitForProcessOutput(System.out, System.err)
    return p.exitValue()
}
def handler = { Closure c ->
    if (c == null) return
    def h = c.clone()
    h.delegate = script
    h.resolveStrategy = Closure.DELEGATE_FIRST
    h.call()
}
if (SimScript.terminated) handler(SimScript.onError)
handler(SimScript.onComplete)

out.withWriter { w ->
    SimScript.lines.each { w << it << '\n' }
    execs.each { w << 'exec\t' << it.replace('\n', ' ') << '\n' }
    w << "end\t${!SimScript.terminated}\t${SimScript.ignored}\n"
}
