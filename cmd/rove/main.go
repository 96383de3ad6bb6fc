// Command rove is a command-line client for Rove servers, in the manner of
// grpcurl: list a server's methods, call one with JSON input and print
// the JSON reply, its metadata and errors, and check its health.
//
//	rove list   [flags] ADDR [SERVICE]
//	rove call   [flags] ADDR SERVICE/METHOD [JSON | @FILE | -]
//	rove health [flags] ADDR [SERVICE]
//
// Listing needs the server to register reflection (reflection.Register);
// health needs health.Server.Register. Typed methods take and return JSON
// (the typed layer's encoding), so `call` sends the JSON given as the
// request payload. Exit status: 0 on success, 1 when the call failed or
// the service is not serving, 2 on bad usage.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/health"
	"github.com/rove-rpc/rove/netpoll"
	"github.com/rove-rpc/rove/reflection"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

const usageText = `usage:
  rove list   [flags] ADDR [SERVICE]                 list the methods a server serves
  rove call   [flags] ADDR SERVICE/METHOD [JSON|@FILE|-]  call a method with a JSON request
  rove health [flags] ADDR [SERVICE]                 check a service's health ("" = the server)
Run 'rove CMD -h' for the flags.
`

// headers collects -H flags.
type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

// common are the flags every command takes.
type common struct {
	timeout  time.Duration
	useTLS   bool
	insecure bool
	caFile   string
	sni      string
	headers  headers
	verbose  bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound the whole command (dial, handshake, call)")
	fs.BoolVar(&c.useTLS, "tls", false, "connect with TLS")
	fs.BoolVar(&c.insecure, "insecure", false, "with -tls: do not verify the server's certificate (tests only)")
	fs.StringVar(&c.caFile, "cacert", "", "with -tls: PEM `file` of the CA to verify the server with (default: the system's)")
	fs.StringVar(&c.sni, "servername", "", "with -tls: the `name` to verify the certificate for (default: the address's host)")
	fs.Var(&c.headers, "H", "request metadata `key: value` (or key=value); repeatable")
	fs.BoolVar(&c.verbose, "v", false, "also print the response metadata and timing")
}

func (c *common) metadata() (core.Metadata, error) {
	var md core.Metadata
	for _, h := range c.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			k, v, ok = strings.Cut(h, "=")
		}
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("-H %q: want key: value", h)
		}
		md = md.Add(strings.TrimSpace(k), core.StringValue(strings.TrimSpace(v)), 0)
	}
	return md, nil
}

func (c *common) transport(addr string) (netpoll.Transport, error) {
	if !c.useTLS {
		return netpoll.Std{}, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: c.insecure, ServerName: c.sni}
	if cfg.ServerName == "" {
		if host, _, ok := strings.Cut(addr, ":"); ok {
			cfg.ServerName = host
		}
	}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-cacert %s: no certificate in it", c.caFile)
		}
	}
	return netpoll.TLS{Config: cfg}, nil
}

// caller opens a session to addr and returns a Caller on it, and how to
// close both.
func (c *common) caller(ctx context.Context, addr string) (*core.Caller, func(), error) {
	tr, err := c.transport(addr)
	if err != nil {
		return nil, nil, err
	}
	s, err := core.Dial(ctx, tr, "tcp", addr, core.Options{KeepaliveInterval: -1})
	if err != nil {
		return nil, nil, err
	}
	cl := s.Caller()
	return cl, func() { cl.Close(); s.Close() }, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("rove "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	data := fs.String("d", "", "call: the request, as JSON, @FILE or - (stdin); or give it after the method")
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	pos := fs.Args()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	switch cmd {
	case "list":
		if len(pos) < 1 || len(pos) > 2 {
			return usage(stderr, "list wants ADDR [SERVICE]")
		}
		return list(ctx, &c, pos[0], at(pos, 1), stdout, stderr)
	case "call":
		if len(pos) < 2 || len(pos) > 3 {
			return usage(stderr, "call wants ADDR SERVICE/METHOD [JSON]")
		}
		input := *data
		if len(pos) == 3 {
			input = pos[2]
		}
		return call(ctx, &c, pos[0], pos[1], input, stdin, stdout, stderr)
	case "health":
		if len(pos) < 1 || len(pos) > 2 {
			return usage(stderr, "health wants ADDR [SERVICE]")
		}
		return check(ctx, &c, pos[0], at(pos, 1), stdout, stderr)
	}
	return usage(stderr, fmt.Sprintf("unknown command %q", cmd))
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func usage(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "rove: %s\n%s", msg, usageText)
	return 2
}

// fail prints a call's error with its code, for people and scripts.
func fail(stderr io.Writer, what string, err error) int {
	fmt.Fprintf(stderr, "rove: %s: %v\ncode: %s\n", what, err, core.CodeOf(err))
	if d, ok := core.DetailsAs[json.RawMessage](err); ok {
		fmt.Fprintf(stderr, "details: %s\n", d)
	}
	return 1
}

func list(ctx context.Context, c *common, addr, service string, stdout, stderr io.Writer) int {
	cl, closeFn, err := c.caller(ctx, addr)
	if err != nil {
		return fail(stderr, "connect", err)
	}
	defer closeFn()
	methods, err := reflection.List(ctx, cl, service)
	if err != nil {
		if errors.Is(err, core.ErrUnknownMethod) {
			err = fmt.Errorf("%w (the server does not register reflection)", err)
		}
		return fail(stderr, "list", err)
	}
	for _, m := range methods {
		fmt.Fprintf(stdout, "%s/%s\t%#016x\n", m.Service, m.Name, m.ID)
	}
	return 0
}

// requestBody reads the JSON input: literal, @file or - for stdin; empty
// means {}.
func requestBody(input string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case input == "":
		b = []byte("{}")
	case input == "-":
		b, err = io.ReadAll(stdin)
	case strings.HasPrefix(input, "@"):
		b, err = os.ReadFile(input[1:])
	default:
		b = []byte(input)
	}
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return nil, errors.New("the request is not valid JSON")
	}
	return b, nil
}

func call(ctx context.Context, c *common, addr, method, input string, stdin io.Reader, stdout, stderr io.Writer) int {
	m, err := core.ParseMethod(method)
	if err != nil {
		return usage(stderr, err.Error())
	}
	body, err := requestBody(input, stdin)
	if err != nil {
		return usage(stderr, err.Error())
	}
	md, err := c.metadata()
	if err != nil {
		return usage(stderr, err.Error())
	}
	cl, closeFn, err := c.caller(ctx, addr)
	if err != nil {
		return fail(stderr, "connect", err)
	}
	defer closeFn()
	start := time.Now()
	var out []byte
	var respMD core.Metadata
	err = cl.Call(ctx, m, body, &core.CallOptions{Metadata: md}, func(r core.Reply) error {
		out = append(out, r.Payload...)
		respMD = r.Metadata()
		return nil
	})
	took := time.Since(start)
	if err != nil {
		return fail(stderr, "call "+m.Service+"/"+m.Name, err)
	}
	if c.verbose {
		fmt.Fprintf(stderr, "took %v\nresponse metadata: %v\n", took.Round(time.Microsecond), respMD)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		fmt.Fprintln(stdout, pretty.String())
	} else {
		fmt.Fprintf(stdout, "%q\n", out) // not JSON: a raw method
	}
	return 0
}

func check(ctx context.Context, c *common, addr, service string, stdout, stderr io.Writer) int {
	cl, closeFn, err := c.caller(ctx, addr)
	if err != nil {
		return fail(stderr, "connect", err)
	}
	defer closeFn()
	st, err := health.CheckStatus(ctx, cl, service)
	if err != nil {
		return fail(stderr, "health", err)
	}
	fmt.Fprintln(stdout, st)
	if st != health.Serving {
		return 1
	}
	return 0
}
