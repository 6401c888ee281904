package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"mvdan.cc/sh/v3/syntax"

	"gitlab.com/debship/debship/internal/shtest"
)

// A user copies the commands of the README, the examples and the --help
// texts. Each `debship …` command there must name subcommands and flags
// that exist: a renamed flag left in the docs is a command that fails.
//
// Commands are found in three kinds of text:
//   - shell: fenced code blocks and the Examples of a --help text, parsed
//     as shell (assignments, sudo, pipes, redirections and comments are the
//     shell's own); every call with a word "debship" is checked strictly.
//   - quoted: `…` spans in Markdown and "…" in help texts and other files
//     that start with "debship" (or with a command: `lab up --release
//     bookworm`); checked strictly.
//   - prose: running text and comments ("heal with: sudo debship lab heal
//     node1"); a word that is no subcommand ends the command there, but the
//     flags that follow it are checked.
//
// Lines of a help text count from its Description's first line.

// docCommand is one command found in the documentation.
type docCommand struct {
	where string   // "README.md:191"
	words []string // the words after "debship"
	prose bool     // from running text, where a command may end in a word
	err   error    // the text does not parse as a command
	// anyCommand marks a flag named alone (`--drain`): some command has it.
	anyCommand bool
}

func (d docCommand) String() string {
	if d.anyCommand {
		return d.words[0]
	}
	return strings.TrimSpace("debship " + strings.Join(d.words, " "))
}

func TestDocumentedCommandsExist(t *testing.T) {
	app := newApp()
	docs := map[string]string{}
	for _, name := range []string{"README.md", "ARCHITECTURE.md", "bench/README.md"} {
		b, err := os.ReadFile(filepath.Join("../..", name))
		if err == nil {
			docs[name] = string(b)
		} else if name == "README.md" {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir("../../examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		docs[strings.TrimPrefix(path, "../../")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var found []docCommand
	for name, text := range docs {
		found = append(found, fileCommands(name, text)...)
	}
	found = append(found, helpCommands(app)...)
	strict := 0
	for _, d := range found {
		if p := checkDocCommand(app, d); p != "" {
			t.Error(p)
		}
		if !d.prose {
			strict++
		}
	}
	// The README alone shows some 40 commands; far fewer means the
	// extraction broke, not that the docs are clean.
	if strict < 80 {
		t.Fatalf("found only %d commands in the docs and help texts; the extraction no longer finds them", strict)
	}
}

// The checker reports a made-up flag, subcommand or command where it is
// written, and accepts the forms the docs use.
func TestDocCommandCheckerFindsMadeUpCommands(t *testing.T) {
	app := newApp()
	doc := "# Title\n\n```sh\n" +
		"sudo debship lab up --bogus      # a comment; or: debship lab up --nodes 3\n" +
		"PIP_INDEX_URL=https://x/simple debship build --output=dist --no-index\n" +
		"debship lab ssh node1 -- sudo journalctl -u corosync --no-pager\n" +
		"debship cluster apply -i $I --json | jq -c 'select(.type == \"result\")'\n" +
		"debship webhook example >/etc/debship/webhook.toml && debship webhook chek\n" +
		"GITLAB_TOKEN=... debship ship -i cluster.toml \\\n    --project group/app --tagg v1\n" +
		"watch -n 2 debship cluster status -i c.toml\n" +
		"```\n\n" +
		"Run `debship clustr status`, `debship <command> --help`, `debship --version`\n" +
		"or `debship deploy -i cluster.toml <deb>`; `lab up --release bookworm --nope`.\n" +
		"Heal it with: sudo debship lab heal node1 --fast. debship lab boots nodes.\n" +
		"`--drain` waits, `--only PHASE` limits, `--drian 5s` does not exist; `watch -n 2 debship cluster staus`.\n"
	var got []string
	for _, d := range fileCommands("README.md", doc) {
		if p := checkDocCommand(app, d); p != "" {
			got = append(got, p)
		}
	}
	want := []string{
		`README.md:4: debship lab up --bogus: no flag --bogus on "lab up"`,
		`README.md:8: debship webhook chek: no subcommand "chek" of "webhook"`,
		`README.md:9: debship ship -i cluster.toml --project group/app --tagg v1: no flag --tagg on "ship"`,
		`README.md:14: debship clustr status: no command "clustr"`,
		`README.md:15: debship lab up --release bookworm --nope: no flag --nope on "lab up"`,
		`README.md:16: debship lab heal node1 --fast: no flag --fast on "lab heal"`,
		`README.md:17: debship cluster staus: no subcommand "staus" of "cluster"`,
		`README.md:17: --drian: no command has a flag --drian`,
	}
	slices.Sort(got) // code blocks come before the spans of the text
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The real README with one made-up flag added: that line, and only it.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme) + "\n```sh\ndebship cluster status --bogus\n```\n"
	line := strings.Count(text, "\n") - 1
	var extra []string
	for _, d := range fileCommands("README.md", text) {
		if p := checkDocCommand(app, d); p != "" && strings.Contains(p, "--bogus") {
			extra = append(extra, p)
		}
	}
	if w := fmt.Sprintf(`README.md:%d: debship cluster status --bogus: no flag --bogus on "cluster status"`, line); len(extra) != 1 || extra[0] != w {
		t.Errorf("README with a made-up flag: %q, want %q", extra, w)
	}
}

// checkDocCommand is the problem with d, "" when it names only commands
// and flags that exist.
func checkDocCommand(app *cli.App, d docCommand) string {
	err := d.err
	switch {
	case err != nil:
	case d.anyCommand:
		err = checkAnyFlag(app.Commands, d.words[0])
	default:
		err = checkWords(app, d.words, d.prose)
	}
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%s: %s: %v", d.where, d, err)
}

// checkWords walks app's commands along the leading words and checks every
// flag against the command it follows, as the command line would be read
// (see interspersed).
func checkWords(app *cli.App, words []string, prose bool) error {
	cmds := app.Commands
	flags := []cli.Flag{cli.HelpFlag, cli.VersionFlag}
	var path []string
	group := true // the app, or a command that only has subcommands
	descending := true
	for i := 0; i < len(words); i++ {
		w := strings.Trim(words[i], "[]") // [--interval D]: an optional flag
		switch {
		case w == "--":
			return nil // the rest belongs to another program
		case strings.HasPrefix(w, "-") && len(w) > 1:
			if !hasFlag(flags, w) {
				return fmt.Errorf("no flag %s on %q", flagName(w), commandName(path))
			}
			if takesValue(flags, w) {
				i++
			}
		case !descending:
		default:
			c := findCommand(cmds, w)
			switch {
			case c == nil && !group: // the first argument
				if passThrough[strings.Join(path, " ")] {
					return nil
				}
				descending = false
				continue
			case c == nil && (prose || w == "help" || placeholder(w)):
				return nil // prose goes on, or `debship <command> --help`
			case c == nil:
				return unknownCommand(path, w)
			}
			path = append(path, c.Name)
			cmds = c.Subcommands
			flags = append([]cli.Flag{cli.HelpFlag}, c.Flags...)
			group = c.Action == nil && len(c.Subcommands) > 0
		}
	}
	return nil
}

// checkAnyFlag checks a flag named alone: some command has it.
func checkAnyFlag(cmds []*cli.Command, flag string) error {
	var walk func(cmds []*cli.Command) bool
	walk = func(cmds []*cli.Command) bool {
		for _, c := range cmds {
			if hasFlag(c.Flags, flag) || walk(c.Subcommands) {
				return true
			}
		}
		return false
	}
	if hasFlag([]cli.Flag{cli.HelpFlag, cli.VersionFlag}, flag) || walk(cmds) {
		return nil
	}
	return fmt.Errorf("no command has a flag %s", flagName(flag))
}

func hasFlag(flags []cli.Flag, tok string) bool {
	name := strings.TrimLeft(flagName(tok), "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// flagName is the flag of a word: "--output" of "--output=DIR".
func flagName(tok string) string {
	name, _, _ := strings.Cut(tok, "=")
	return name
}

func commandName(path []string) string {
	if len(path) == 0 {
		return "debship"
	}
	return strings.Join(path, " ")
}

func unknownCommand(path []string, w string) error {
	if len(path) == 0 {
		return fmt.Errorf("no command %q", w)
	}
	return fmt.Errorf("no subcommand %q of %q", w, commandName(path))
}

// placeholder reports whether a word stands for one the user fills in:
// NODE, $I, an expansion, <command> (written COMMAND by placeholders), ….
func placeholder(w string) bool {
	return strings.HasPrefix(w, "$") || strings.Contains(w, "…") || strings.Contains(w, "...") || capitals.MatchString(w)
}

var capitals = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)

// fileCommands finds the commands of one file: Markdown by its code blocks
// and `…` spans, any other file (TOML, Python) as text with "…" quotes.
func fileCommands(name, text string) []docCommand {
	switch filepath.Ext(name) {
	case ".md":
	case ".toml", ".py", ".sh":
		return commentCommands(name, text)
	default:
		return textCommands(name, 1, text, `"`)
	}
	var out []docCommand
	lines := strings.SplitAfter(text, "\n")
	var prose strings.Builder // the text outside code blocks, same lines
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			prose.WriteString(lines[i])
			continue
		}
		start := i + 1
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
		}
		code := strings.Join(lines[start:min(i, len(lines))], "")
		out = append(out, codeBlockCommands(name, start+1, strings.TrimPrefix(fence, "```"), code)...)
		prose.WriteString(strings.Repeat("\n", min(i, len(lines)-1)-start+2))
	}
	return append(out, textCommands(name, 1, prose.String(), "`")...)
}

// commentCommands reads the comments of a file in a language with # comments
// (a quoted value such as a name "debship example" is not a command).
func commentCommands(name, text string) []docCommand {
	var out []docCommand
	for i, line := range strings.Split(text, "\n") {
		quoted := false
		for j, r := range line {
			if r == '"' {
				quoted = !quoted
			}
			if r == '#' && !quoted {
				out = append(out, textCommands(name, i+1, line[j+1:], `"`)...)
				break
			}
		}
	}
	return out
}

// codeBlockCommands reads a fenced block: shell unless its language says
// otherwise; a block without a language that is no shell (a diagram) is
// text.
func codeBlockCommands(name string, line int, lang, code string) []docCommand {
	switch strings.TrimSpace(lang) {
	case "sh", "shell", "bash", "console":
		return shellCommands(name, line, code)
	case "":
		if _, err := parseShell(code); err == nil {
			return shellCommands(name, line, code)
		}
	}
	return textCommands(name, line, code, `"`)
}

// textCommands finds the commands of running text: quote-delimited spans
// strictly, the rest as prose, line by line. line is text's first line.
func textCommands(name string, line int, text, quote string) []docCommand {
	var out []docCommand
	span := regexp.MustCompile(quote + `[^` + quote + `]+` + quote)
	rest := span.ReplaceAllStringFunc(text, func(s string) string {
		return strings.Repeat(" ", len(s)-strings.Count(s, "\n")) + strings.Repeat("\n", strings.Count(s, "\n"))
	})
	for _, loc := range span.FindAllStringIndex(text, -1) {
		at := line + strings.Count(text[:loc[0]], "\n")
		out = append(out, quotedCommands(name, at, text[loc[0]+1:loc[1]-1])...)
	}
	for i, l := range strings.Split(rest, "\n") {
		out = append(out, proseCommands(name, line+i, l)...)
	}
	return out
}

// quotedCommands reads a span that starts with debship, or with one of its
// commands and a subcommand or flag (`lab up --release bookworm`, not
// "webhook job <id>"), as shell.
func quotedCommands(name string, line int, span string) []docCommand {
	words := strings.Fields(span)
	if slices.Contains(words, "debship") { // also `watch -n 2 debship cluster status`
		return shellCommands(name, line, strings.Join(words, " "))
	}
	if len(words) > 0 && strings.HasPrefix(words[0], "--") && len(words[0]) > 2 {
		return []docCommand{{where: fmt.Sprintf("%s:%d", name, line), words: words[:1], anyCommand: true}}
	}
	if len(words) < 2 {
		return nil
	}
	c := findCommand(newApp().Commands, words[0])
	if c == nil || (findCommand(c.Subcommands, words[1]) == nil && !strings.HasPrefix(words[1], "-")) {
		return nil
	}
	return shellCommands(name, line, "debship "+strings.Join(words, " "))
}

// proseWord is "debship" and a word in running text.
var proseWord = regexp.MustCompile(`(?:^|[\s(])debship +[a-z-]`)

// proseCommands finds "debship <word> …" in one line of running text; the
// command ends at punctuation or a quote.
func proseCommands(name string, line int, text string) []docCommand {
	var out []docCommand
	for _, loc := range proseWord.FindAllStringIndex(text, -1) {
		var words []string
		for _, w := range strings.Fields(text[loc[1]-1:]) {
			if strings.ContainsAny(w[:1], "(\"'`") {
				break
			}
			w, _, cut := strings.Cut(w, "|")
			trimmed := strings.TrimRight(w, ",;:.)\"'`")
			if trimmed != "" {
				words = append(words, trimmed)
			}
			if cut || trimmed != w {
				break
			}
		}
		out = append(out, docCommand{where: fmt.Sprintf("%s:%d", name, line), words: words, prose: true})
	}
	return out
}

// angle is a placeholder in angle brackets, <version>, which the shell
// would read as a redirection; parseShell writes it VERSION.
var (
	angle   = regexp.MustCompile(`<([A-Za-z][A-Za-z0-9 _.'/-]*)>`)
	nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)
	anyWord = regexp.MustCompile(`\bdebship\b`)
)

func parseShell(code string) (*syntax.File, error) {
	code = angle.ReplaceAllStringFunc(code, func(s string) string {
		return strings.ToUpper(nonWord.ReplaceAllString(s[1:len(s)-1], "_"))
	})
	return syntax.NewParser(syntax.KeepComments(true)).Parse(strings.NewReader(code), "")
}

// shellCommands finds the debship calls of shell code that starts at line,
// and reads its comments as prose.
func shellCommands(name string, line int, code string) []docCommand {
	f, err := parseShell(code)
	if err != nil {
		if !anyWord.MatchString(code) {
			return nil
		}
		return []docCommand{{where: fmt.Sprintf("%s:%d", name, line), words: strings.Fields(code), err: fmt.Errorf("does not parse as a shell command: %v", err)}}
	}
	var out []docCommand
	at := func(p syntax.Pos) string { return fmt.Sprintf("%s:%d", name, line+int(p.Line())-1) }
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			for i, w := range n.Args {
				if w.Lit() == "debship" {
					out = append(out, docCommand{where: at(n.Pos()), words: wordTexts(n.Args[i+1:])})
					break
				}
			}
		case *syntax.Comment:
			out = append(out, proseCommands(name, line+int(n.Pos().Line())-1, n.Text)...)
		}
		return true
	})
	return out
}

// wordTexts are the words as the command receives them, with "$X" for
// what an expansion makes.
func wordTexts(words []*syntax.Word) []string {
	var out []string
	for _, w := range words {
		text, _ := shtest.Cook(w)
		out = append(out, strings.ReplaceAll(text, "\x00", "$X"))
	}
	return out
}

// helpCommands finds the commands of every --help text: its Examples as
// shell, the rest as text with "…" quotes.
func helpCommands(app *cli.App) []docCommand {
	out := textCommands("debship --help", 1, app.Usage+"\n"+app.Description, `"`)
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := strings.TrimSpace(path + " " + c.Name)
			name := "debship " + p + " --help"
			prose, examples, _ := strings.Cut(c.Description, "\nExamples:\n")
			out = append(out, textCommands(name, 1, prose, `"`)...)
			out = append(out, shellCommands(name, strings.Count(prose, "\n")+3, examples)...)
			out = append(out, textCommands(name+" (usage)", 1, c.Usage+" "+c.ArgsUsage+" "+c.UsageText, `"`)...)
			for _, f := range c.Flags {
				if u, ok := f.(cli.DocGenerationFlag); ok {
					out = append(out, textCommands(name+" (--"+f.Names()[0]+")", 1, u.GetUsage(), `"`)...)
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk("", app.Commands)
	return out
}
