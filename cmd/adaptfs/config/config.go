// Package config assembles adaptfs's configuration from the parts owned by
// each package, reads it from a TOML file and from -o key=value options, and
// writes the effective configuration back out as TOML.
//
// The format is flat: every key is top-level, there are no [tables]. Unknown
// keys, bad values and syntax errors are reported with the file name and
// line. One table, built by reflection over the toml tags of Config and its
// embedded structs, knows every key; the file decoder, Set and Keys all use
// it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/fs"
	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/stage"
)

// The parts of Config, one per package. They are aliases so that each can
// be embedded under its own field name (c.S3, c.Stage, ...): four embedded
// types all named Config would be duplicate fields.
type (
	S3    = s3backend.Config
	Stage = stage.Config
	Adapt = adapt.Config
	FS    = fs.Config
)

// Config is the whole configuration: flat keys, as in the TOML file.
//
// Config holds no secrets, by design: credentials come only from the
// standard AWS chain (environment variables, shared credentials and config
// files, --profile, instance and container roles), never from the file or
// from options. TOML() output is readable by any user of the mount as
// .adaptstats/config, so keep it that way: do not add credential fields.
type Config struct {
	S3
	Stage
	Adapt
	FS

	LogLevel  string `toml:"log_level"`  // debug|info|warn|error
	LogFormat string `toml:"log_format"` // text|json
	LogFile   string `toml:"log_file"`   // "" = stderr
}

// Default returns every package's defaults.
func Default() Config {
	return Config{
		S3:        s3backend.DefaultConfig(),
		Stage:     stage.DefaultConfig(),
		Adapt:     adapt.DefaultConfig(),
		FS:        fs.DefaultConfig(),
		LogLevel:  "info",
		LogFormat: "text",
	}
}

// ErrCredentials is matched (errors.Is) by the error for a credentials key
// in the file or in the options.
var ErrCredentials = errors.New("credentials are not configurable")

// credError reports a credentials key without ever echoing its value.
type credError struct{ where string }

func (e credError) Error() string {
	return "credentials are not read from " + e.where +
		"; use the AWS environment variables, shared credentials file or --profile"
}

func (e credError) Is(target error) bool { return target == ErrCredentials }

// isCredentialKey reports keys that look like an attempt to configure
// credentials.
func isCredentialKey(key string) bool {
	switch strings.ReplaceAll(strings.ToLower(key), "-", "_") {
	case "access_key", "secret_key", "aws_access_key_id", "aws_secret_access_key",
		"session_token", "aws_session_token", "access_key_id", "secret_access_key":
		return true
	}
	return false
}

// field is one key of the configuration.
type field struct {
	key   string
	index []int // for reflect.Value.FieldByIndex on a Config
	typ   reflect.Type
}

var durationType = reflect.TypeFor[time.Duration]()

// fieldTable returns every key of Config. It is computed on demand from the
// toml tags of Config and its embedded structs, and panics on a programming
// error (a duplicate key, an untagged field or an unsupported type), which
// any test catches.
func fieldTable() map[string]field {
	out := make(map[string]field)
	collectFields(reflect.TypeFor[Config](), nil, out)
	return out
}

func collectFields(t reflect.Type, prefix []int, out map[string]field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		index := append(slices.Clip(prefix), i)
		tag, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			collectFields(sf.Type, index, out)
			continue
		}
		if !sf.IsExported() || tag == "-" {
			continue
		}
		if tag == "" {
			panic(fmt.Sprintf("config: field %s.%s has no toml tag", t, sf.Name))
		}
		if prev, dup := out[tag]; dup {
			panic(fmt.Sprintf("config: key %q is defined twice (%v and %s.%s)", tag, prev.index, t, sf.Name))
		}
		if !supported(sf.Type) {
			panic(fmt.Sprintf("config: key %q has unsupported type %s", tag, sf.Type))
		}
		out[tag] = field{key: tag, index: index, typ: sf.Type}
	}
}

func supported(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// Keys returns every valid key, sorted.
func Keys() []string {
	var keys []string
	for k := range fieldTable() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// suggest returns the closest known key within edit distance 2, or "".
// A key must be at least twice as long as the distance to be suggested, so
// that "foo" does not suggest "ro".
func suggest(key string) string {
	best, bestDist := "", 3
	for _, k := range Keys() {
		if d := editDistance(key, k); d < bestDist && 2*d <= len(k) {
			best, bestDist = k, d
		}
	}
	return best
}

func didYouMean(key string) string {
	if s := suggest(key); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// lookupOption finds the field for an option key.
func lookupOption(key string) (field, error) {
	if isCredentialKey(key) {
		return field{}, fmt.Errorf("option %q: %w", key, credError{where: "options or the config file"})
	}
	f, ok := fieldTable()[key]
	if !ok {
		return field{}, fmt.Errorf("unknown option %q%s", key, didYouMean(key))
	}
	return f, nil
}

// Set sets one key from a string value (from -o or the command line). The
// keys are the file's; the value is converted by the field's type: strings
// as they are, booleans from true/false/yes/no/1/0, integers, floats, and
// durations as for time.ParseDuration ("500ms", "5s", "1m30s").
func (c *Config) Set(key, value string) error {
	f, err := lookupOption(key)
	if err != nil {
		return err
	}
	if err := setString(reflect.ValueOf(c).Elem().FieldByIndex(f.index), value); err != nil {
		return fmt.Errorf("option %q: %w", key+"="+value, err)
	}
	return nil
}

func setString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New(`not a duration (like "500ms", "5s" or "1m30s")`)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", v.Type())
		}
		// A list in an option: items separated by ";" (commas separate
		// the options themselves).
		var items []string
		for it := range strings.SplitSeq(s, ";") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "1":
			v.SetBool(true)
		case "false", "no", "0":
			v.SetBool(false)
		default:
			return errors.New("not a boolean (true/false, yes/no, 1/0)")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return errors.New("integer out of range")
		} else if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return errors.New("integer out of range")
		} else if err != nil {
			return errors.New("not a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, v.Type().Bits())
		if errors.Is(err, strconv.ErrRange) {
			return errors.New("number out of range")
		} else if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(x)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// ApplyOptions applies a comma-separated -o list such as
// "max_concurrency=16, ro,prefix=logs". An item is "key=value" or a bare
// boolean key, which means true; empty items are ignored. Spaces around
// items, keys and values are trimmed. On error c is unchanged.
func (c *Config) ApplyOptions(opts string) error {
	n := *c
	for item := range strings.SplitSeq(opts, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, hasValue := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if hasValue {
			if err := n.Set(key, value); err != nil {
				return err
			}
			continue
		}
		f, err := lookupOption(key)
		if err != nil {
			return err
		}
		if f.typ.Kind() != reflect.Bool {
			return fmt.Errorf("option %q: needs a value (%s=...)", key, key)
		}
		reflect.ValueOf(&n).Elem().FieldByIndex(f.index).SetBool(true)
	}
	*c = n
	return nil
}

// Validate checks the log_* keys and then each package's part. It returns
// every part's first problem, joined; each names its key.
func (c Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format: must be text or json, got %q", c.LogFormat))
	}
	if strings.ContainsRune(c.LogFile, 0) {
		errs = append(errs, errors.New("log_file: must not contain a NUL byte"))
	}
	for _, err := range []error{c.S3.Validate(), c.Stage.Validate(), c.Adapt.Validate(), c.FS.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TOML returns the effective configuration as TOML, every key at the top
// level; LoadFile reads it back to the same Config. It holds no secrets:
// Config has none (see Config).
func (c Config) TOML() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# adaptfs effective configuration. Credentials are not part of it:\n" +
		"# they come only from the AWS chain.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("encoding configuration: %w", err)
	}
	return b.Bytes(), nil
}

// LoadFile decodes the TOML file at path over c, so keys absent from the
// file keep their current values. Every key must be top-level and known.
// All problems found are returned together, each as "path:line: ...", in
// line order; on error c is unchanged. Values that decode but are out of
// range are left for Validate.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	n := *c
	if err := n.decode(path, string(data)); err != nil {
		return err
	}
	*c = n
	return nil
}

// fileError is one problem at a line of a configuration file.
type fileError struct {
	path string
	line int // 0: unknown
	msg  string
	err  error // wrapped, may be nil
}

func (e *fileError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.path, e.line, e.msg)
	}
	return e.path + ": " + e.msg
}

func (e *fileError) Unwrap() error { return e.err }

func (c *Config) decode(path, text string) error {
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return syntaxError(path, text, pe)
		}
		return fmt.Errorf("%s: %w", path, err)
	}

	lines := keyLines(text)
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := lines[a] - lines[b]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})

	fields := fieldTable()
	cv := reflect.ValueOf(c).Elem()
	var errs []error
	for _, name := range names {
		at := func(msg string, err error) {
			errs = append(errs, &fileError{path: path, line: lines[name], msg: msg, err: err})
		}
		val := raw[name]
		switch val.(type) {
		case map[string]any, []map[string]any:
			at(fmt.Sprintf("table %q: tables are not part of the format; write every key at the top level", name), nil)
			continue
		}
		if isCredentialKey(name) {
			ce := credError{where: "the config file"}
			at(name+": "+ce.Error(), ce)
			continue
		}
		f, ok := fields[name]
		if !ok {
			at(fmt.Sprintf("unknown key %q%s", name, didYouMean(name)), nil)
			continue
		}
		if err := setTOML(cv.FieldByIndex(f.index), val); err != nil {
			at(name+": "+err.Error(), err)
		}
	}
	return errors.Join(errs...)
}

// syntaxError reports a TOML syntax error at its line. The parser's message
// may quote the text it choked on, so on a credentials line (or when the
// last key read was one) it is replaced by the credentials error.
func syntaxError(path, text string, pe toml.ParseError) error {
	line := pe.Position.Line
	key := pe.LastKey
	if line > 0 {
		src := strings.Split(text, "\n")
		if line <= len(src) {
			s := scanner{src: src[line-1]}
			s.skipSpace(false)
			if k := s.key(); isCredentialKey(k) {
				key = k
			}
		}
	}
	if k, _, _ := strings.Cut(key, "."); isCredentialKey(k) {
		ce := credError{where: "the config file"}
		return &fileError{path: path, line: line, msg: k + ": " + ce.Error(), err: ce}
	}
	return &fileError{path: path, line: line, msg: "syntax error: " + pe.Message, err: pe}
}

// setTOML stores a decoded TOML value in a field of a supported type.
func setTOML(v reflect.Value, val any) error {
	if v.Type() == durationType {
		s, ok := val.(string)
		if !ok {
			return wrongType(`a duration string like "5s"`, val)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf(`%s is not a duration (like "500ms", "5s" or "1m30s")`, quoteShort(s))
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			return wrongType("a string", val)
		}
		v.SetString(s)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", v.Type())
		}
		arr, ok := val.([]any)
		if !ok {
			return wrongType("an array of strings", val)
		}
		items := make([]string, 0, len(arr))
		for i, it := range arr {
			s, ok := it.(string)
			if !ok {
				return fmt.Errorf("item %d: %w", i+1, wrongType("a string", it))
			}
			items = append(items, s)
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return wrongType("true or false", val)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := val.(int64)
		if !ok {
			return wrongType("an integer", val)
		}
		if v.OverflowInt(n) {
			return fmt.Errorf("%d is out of range for %s", n, v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := val.(int64)
		if !ok {
			return wrongType("a non-negative integer", val)
		}
		if n < 0 || v.OverflowUint(uint64(n)) {
			return fmt.Errorf("%d is out of range for %s", n, v.Type())
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		var x float64
		switch n := val.(type) {
		case float64:
			x = n
		case int64:
			x = float64(n)
		default:
			return wrongType("a number", val)
		}
		if v.OverflowFloat(x) {
			return fmt.Errorf("%g is out of range for %s", x, v.Type())
		}
		v.SetFloat(x)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func wrongType(want string, val any) error {
	return fmt.Errorf("want %s, got %s", want, describe(val))
}

// describe names a decoded TOML value's type, with the value when short.
func describe(val any) string {
	switch v := val.(type) {
	case string:
		return "string " + quoteShort(v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %g", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case []any:
		return "an array"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("%T", val)
}

// quoteShort quotes s, cut to 40 runes.
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 40 {
		return strconv.Quote(string(r[:40])) + "..."
	}
	return strconv.Quote(s)
}

// keyLines returns, for each top-level key and each table of a TOML document
// that has already parsed, the line where it first appears: a key line
// outside any table ("key = ...", "key.sub = ...") or a table header
// ("[key]", "[key.sub]", "[[key]]"). It skips strings (multi-line ones too),
// arrays and inline tables, so text inside values is never taken for a key.
func keyLines(text string) map[string]int {
	s := scanner{src: text}
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if strings.HasPrefix(text, bom) {
			s.i = len(bom)
			break
		}
	}
	offsets := make(map[string]int)
	record := func(key string, off int) {
		if _, seen := offsets[key]; !seen && key != "" {
			offsets[key] = off
		}
	}
	inTable := false
	for {
		s.skipSpace(true)
		if s.eof() {
			break
		}
		start := s.i
		if s.peek() == '[' {
			s.i++
			if s.peek() == '[' {
				s.i++
			}
			s.skipSpace(false)
			record(s.key(), start)
			inTable = true
			s.skipLine()
			continue
		}
		k := s.key()
		if !inTable {
			record(k, start)
		}
		s.skipSpace(false)
		if s.peek() == '=' {
			s.i++
			s.skipSpace(false)
			s.value()
		}
		s.skipLine()
		if s.i == start { // cannot happen on valid TOML; never loop
			s.i++
		}
	}
	lines := make(map[string]int, len(offsets))
	for k, off := range offsets {
		lines[k] = 1 + strings.Count(text[:off], "\n")
	}
	return lines
}

// scanner walks TOML text just far enough to find where keys are.
type scanner struct {
	src string
	i   int
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

// skipSpace skips blanks and comments, and newlines too if multiline.
func (s *scanner) skipSpace(multiline bool) {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			if !multiline {
				return
			}
			s.i++
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *scanner) skipComment() {
	if j := strings.IndexByte(s.src[s.i:], '\n'); j >= 0 {
		s.i += j
	} else {
		s.i = len(s.src)
	}
}

// skipLine skips to just after the next newline.
func (s *scanner) skipLine() {
	s.skipComment()
	if !s.eof() {
		s.i++
	}
}

// key reads a possibly dotted key and returns its first part, unquoted.
func (s *scanner) key() string {
	first := ""
	for n := 0; ; n++ {
		s.skipSpace(false)
		part, ok := s.keyPart()
		if !ok {
			break
		}
		if n == 0 {
			first = part
		}
		s.skipSpace(false)
		if s.peek() != '.' {
			break
		}
		s.i++
	}
	return first
}

func (s *scanner) keyPart() (string, bool) {
	start := s.i
	switch s.peek() {
	case '"':
		s.i++
		s.basicString()
		raw := s.src[start:s.i]
		if u, err := strconv.Unquote(raw); err == nil {
			return u, true
		}
		return strings.Trim(raw, `"`), true
	case '\'':
		s.i++
		s.until("'", false)
		return strings.TrimSuffix(s.src[start+1:s.i], "'"), true
	}
	for !s.eof() {
		c := s.peek()
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			s.i++
			continue
		}
		break
	}
	return s.src[start:s.i], s.i > start
}

// basicString skips the rest of a one-line "string" after its opening quote.
func (s *scanner) basicString() {
	for !s.eof() {
		switch s.peek() {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		case '\n':
			return
		default:
			s.i++
		}
	}
	s.i = min(s.i, len(s.src))
}

// until skips past the next delim (honouring backslash escapes if asked),
// or to the end of the text.
func (s *scanner) until(delim string, escapes bool) {
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.i += 2
			continue
		}
		if strings.HasPrefix(s.src[s.i:], delim) {
			s.i += len(delim)
			return
		}
		s.i++
	}
	s.i = min(s.i, len(s.src))
}

// value skips one value: a string, an array, an inline table or a scalar.
func (s *scanner) value() {
	switch {
	case strings.HasPrefix(s.src[s.i:], `"""`):
		s.i += 3
		s.until(`"""`, true)
		s.extraQuotes('"')
	case strings.HasPrefix(s.src[s.i:], `'''`):
		s.i += 3
		s.until(`'''`, false)
		s.extraQuotes('\'')
	case s.peek() == '"':
		s.i++
		s.basicString()
	case s.peek() == '\'':
		s.i++
		s.until("'", false)
	case s.peek() == '[':
		s.i++
		s.container(']', false)
	case s.peek() == '{':
		s.i++
		s.container('}', true)
	default:
		for !s.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(s.peek())) {
			s.i++
		}
	}
}

// extraQuotes skips up to two quotes that close a multi-line string right
// after its content ends in quotes (`"""a""""`).
func (s *scanner) extraQuotes(q byte) {
	for range 2 {
		if s.peek() == q {
			s.i++
		}
	}
}

// container skips array items or inline-table entries up to end.
func (s *scanner) container(end byte, entries bool) {
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		switch s.peek() {
		case end:
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		if entries {
			s.key()
			s.skipSpace(false)
			if s.peek() == '=' {
				s.i++
			}
			s.skipSpace(false)
		}
		s.value()
		if s.i == start {
			s.i++
		}
	}
}
