package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	intelaspspb "github.com/asps-project/asps/api/intelasps"
	occlumpb "github.com/asps-project/asps/api/occlum"
)

// genScript is scripts/genproto.sh, relative to this package's directory
// (where go test runs).
var genScript = filepath.Join("..", "scripts", "genproto.sh")

// The full method names each service must have on the wire. The two
// compatibility services are called by existing C++ clients of Occlum and of
// Intel's ASPS: a change here breaks them.
var wantMethods = []struct {
	file    protoreflect.FileDescriptor
	desc    *grpc.ServiceDesc
	methods []string
}{
	{aspsv1.File_asps_v1_asps_proto, &aspsv1.Secrets_ServiceDesc, []string{
		"/asps.v1.Secrets/GetSecrets",
		"/asps.v1.Secrets/GetSecret",
		"/asps.v1.Secrets/WhoAmI",
	}},
	{occlumpb.File_occlum_ratls_proto, &occlumpb.GrSecret_ServiceDesc, []string{
		"/ratls.GrSecret/GetSecret",
	}},
	{intelaspspb.File_intelasps_secretmanager_proto, &intelaspspb.SecretManger_ServiceDesc, []string{
		"/secretmanager.SecretManger/GetSecret",
	}},
}

func TestFullMethodNames(t *testing.T) {
	for _, w := range wantMethods {
		// From the gRPC service descriptor, which routes calls.
		var fromDesc []string
		for _, m := range w.desc.Methods {
			fromDesc = append(fromDesc, "/"+w.desc.ServiceName+"/"+m.MethodName)
		}
		for _, s := range w.desc.Streams {
			fromDesc = append(fromDesc, "/"+w.desc.ServiceName+"/"+s.StreamName)
		}
		// From the protobuf file descriptor, which reflection serves.
		var fromProto []string
		svcs := w.file.Services()
		for i := range svcs.Len() {
			ms := svcs.Get(i).Methods()
			for j := range ms.Len() {
				m := ms.Get(j)
				fromProto = append(fromProto, "/"+string(m.Parent().FullName())+"/"+string(m.Name()))
			}
		}
		for _, got := range [][]string{fromDesc, fromProto} {
			if !slices.Equal(sorted(got), sorted(w.methods)) {
				t.Errorf("%s: methods %q, want %q", w.file.Path(), got, w.methods)
			}
		}
	}
	// The generated constants the server and client code use.
	for got, want := range map[string]string{
		aspsv1.Secrets_GetSecrets_FullMethodName:          "/asps.v1.Secrets/GetSecrets",
		aspsv1.Secrets_GetSecret_FullMethodName:           "/asps.v1.Secrets/GetSecret",
		aspsv1.Secrets_WhoAmI_FullMethodName:              "/asps.v1.Secrets/WhoAmI",
		occlumpb.GrSecret_GetSecret_FullMethodName:        "/ratls.GrSecret/GetSecret",
		intelaspspb.SecretManger_GetSecret_FullMethodName: "/secretmanager.SecretManger/GetSecret",
	} {
		if got != want {
			t.Errorf("FullMethodName constant %q, want %q", got, want)
		}
	}
}

// field is one field of a message as the upstream .proto declares it.
type field struct {
	number protoreflect.FieldNumber
	name   string
	kind   protoreflect.Kind
}

// TestCompatMessages pins the compatibility messages to the upstream
// definitions (Occlum's ratls.proto, Intel's secretmanager.proto): field
// numbers, names and types are the wire contract.
func TestCompatMessages(t *testing.T) {
	for _, c := range []struct {
		msg    proto.Message
		name   string
		fields []field
	}{
		{&occlumpb.SecretRequest{}, "ratls.SecretRequest", []field{{1, "name", protoreflect.StringKind}}},
		{&occlumpb.SecretReply{}, "ratls.SecretReply", []field{{1, "secret", protoreflect.StringKind}}},
		{&intelaspspb.SecretRequest{}, "secretmanager.SecretRequest", []field{
			{1, "key", protoreflect.StringKind}, {2, "ctx", protoreflect.StringKind},
		}},
		{&intelaspspb.SecretReply{}, "secretmanager.SecretReply", []field{{1, "value", protoreflect.StringKind}}},
	} {
		d := c.msg.ProtoReflect().Descriptor()
		if string(d.FullName()) != c.name {
			t.Errorf("message %s, want %s", d.FullName(), c.name)
			continue
		}
		var got []field
		fs := d.Fields()
		for i := range fs.Len() {
			f := fs.Get(i)
			if f.Cardinality() != protoreflect.Optional || f.HasPresence() {
				t.Errorf("%s.%s: not a plain proto3 singular field", c.name, f.Name())
			}
			got = append(got, field{f.Number(), string(f.Name()), f.Kind()})
		}
		if !slices.Equal(got, c.fields) {
			t.Errorf("%s fields %v, want %v", c.name, got, c.fields)
		}
	}

	// The bytes a C++ client sends, encoded by hand: tag (number<<3 | 2),
	// length, UTF-8.
	for _, c := range []struct {
		msg  proto.Message
		want []byte
	}{
		{&occlumpb.SecretRequest{Name: "demo_key"}, append([]byte{0x0a, 8}, "demo_key"...)},
		{&intelaspspb.SecretRequest{Key: "k", Ctx: "c"}, []byte{0x0a, 1, 'k', 0x12, 1, 'c'}},
		{&intelaspspb.SecretReply{Value: "v"}, []byte{0x0a, 1, 'v'}},
	} {
		got, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%T encodes as % x, want % x", c.msg, got, c.want)
		}
	}
}

type aspsStub struct {
	aspsv1.UnimplementedSecretsServer
}

func (aspsStub) GetSecret(_ context.Context, r *aspsv1.GetSecretRequest) (*aspsv1.Secret, error) {
	return &aspsv1.Secret{Name: r.GetName(), Value: []byte("asps:" + r.GetName())}, nil
}

type occlumStub struct {
	occlumpb.UnimplementedGrSecretServer
}

func (occlumStub) GetSecret(_ context.Context, r *occlumpb.SecretRequest) (*occlumpb.SecretReply, error) {
	return &occlumpb.SecretReply{Secret: "occlum:" + r.GetName()}, nil
}

type intelStub struct {
	intelaspspb.UnimplementedSecretMangerServer
}

func (intelStub) GetSecret(_ context.Context, r *intelaspspb.SecretRequest) (*intelaspspb.SecretReply, error) {
	return &intelaspspb.SecretReply{Value: "intel:" + r.GetKey()}, nil
}

// TestRouting registers the three services on one in-memory gRPC server and
// calls each by its literal wire path, as a client in another language would.
func TestRouting(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	aspsv1.RegisterSecretsServer(srv, aspsStub{})
	occlumpb.RegisterGrSecretServer(srv, occlumStub{})
	intelaspspb.RegisterSecretMangerServer(srv, intelStub{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var s aspsv1.Secret
	if err := conn.Invoke(ctx, "/asps.v1.Secrets/GetSecret", &aspsv1.GetSecretRequest{Name: "a"}, &s); err != nil {
		t.Fatalf("asps GetSecret: %v", err)
	} else if string(s.GetValue()) != "asps:a" {
		t.Errorf("asps GetSecret = %q", s.GetValue())
	}
	var o occlumpb.SecretReply
	if err := conn.Invoke(ctx, "/ratls.GrSecret/GetSecret", &occlumpb.SecretRequest{Name: "b"}, &o); err != nil {
		t.Fatalf("occlum GetSecret: %v", err)
	} else if o.GetSecret() != "occlum:b" {
		t.Errorf("occlum GetSecret = %q", o.GetSecret())
	}
	var i intelaspspb.SecretReply
	if err := conn.Invoke(ctx, "/secretmanager.SecretManger/GetSecret", &intelaspspb.SecretRequest{Key: "c"}, &i); err != nil {
		t.Fatalf("intel GetSecret: %v", err)
	} else if i.GetValue() != "intel:c" {
		t.Errorf("intel GetSecret = %q", i.GetValue())
	}
}

// TestProtoFilesComplete checks, without any tool, that every .proto under
// api/ is listed in scripts/genproto.sh and has its generated code beside it,
// and that no generated file is left without its .proto.
func TestProtoFilesComplete(t *testing.T) {
	script, err := os.ReadFile(genScript)
	if err != nil {
		t.Fatal(err)
	}
	protos := walk(t, ".", ".proto")
	if len(protos) == 0 {
		t.Fatal("no .proto files under api/")
	}
	for p := range protos {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(p) + `\s*$`).Match(script) {
			t.Errorf("%s is not in the PROTOS list of scripts/genproto.sh", p)
		}
		base := strings.TrimSuffix(p, ".proto")
		for _, g := range []string{base + ".pb.go", base + "_grpc.pb.go"} {
			if _, err := os.Stat(g); err != nil {
				t.Errorf("%s: no generated %s: run scripts/genproto.sh", p, g)
			}
		}
	}
	for g := range walk(t, ".", ".pb.go") {
		base := strings.TrimSuffix(strings.TrimSuffix(g, ".pb.go"), "_grpc")
		if _, ok := protos[base+".proto"]; !ok {
			t.Errorf("%s has no %s.proto: remove it or run scripts/genproto.sh", g, base)
		}
	}
}

// TestGeneratedCodeIsCurrent regenerates the Go code with
// scripts/genproto.sh into a temporary directory and compares it byte for
// byte with the committed files.
//
// By default it runs only when protoc and both plugins are already installed
// in the versions that made the committed code (their versions are in the
// generated headers), and skips otherwise. With ASPS_CHECK_PROTO=1 it always
// runs, letting the script install the pinned tools (apt-get as root, and
// go install through the module proxy), and any failure is an error.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() && os.Getenv("ASPS_CHECK_PROTO") != "1" {
		t.Skip("skipped in -short mode")
	}
	strict := os.Getenv("ASPS_CHECK_PROTO") == "1"
	committed := readAll(t, ".", walk(t, ".", ".pb.go"))

	env := os.Environ()
	if !strict {
		bin, err := findTools(committed)
		if err != nil {
			t.Skipf("not checking that the generated code is current: %v.\n"+
				"Run scripts/genproto.sh --check, or set ASPS_CHECK_PROTO=1 to have this test install the pinned tools and check.", err)
		}
		env = append(env, "ASPS_PROTO_BIN="+bin)
	}

	out := t.TempDir()
	cmd := exec.Command("bash", genScript, "--out", out)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/genproto.sh --out: %v\n%s", err, b)
	}
	fresh := readAll(t, out, walk(t, out, ".pb.go"))

	for _, name := range sorted(keys(committed, fresh)) {
		c, inC := committed[name]
		f, inF := fresh[name]
		switch {
		case !inF:
			t.Errorf("api/%s is committed but not generated: remove it, or run scripts/genproto.sh", name)
		case !inC:
			t.Errorf("api/%s is generated but not committed: run scripts/genproto.sh", name)
		case !bytes.Equal(c, f):
			t.Errorf("api/%s is out of date: run scripts/genproto.sh\n%s", name, firstDiff(c, f))
		}
	}
}

// findTools reports where protoc-gen-go and protoc-gen-go-grpc of the
// versions named in the committed headers are installed, and that protoc of
// the committed version is in PATH (or $PROTOC). Its error says what is
// missing.
func findTools(committed map[string][]byte) (bin string, err error) {
	var all []byte
	for _, b := range committed {
		all = append(all, b...)
	}
	header := func(re string) (string, error) {
		m := regexp.MustCompile(`(?m)^// ` + re + `\s+(v\S+)$`).FindSubmatch(all)
		if m == nil {
			return "", fmt.Errorf("no %q version line in the committed generated code", re)
		}
		return string(m[1]), nil
	}
	wantProtoc, err := header(`\s*protoc`)
	if err != nil {
		return "", err
	}
	wantGo, err := header(`\tprotoc-gen-go`)
	if err != nil {
		return "", err
	}
	wantGRPC, err := header(`- protoc-gen-go-grpc`)
	if err != nil {
		return "", err
	}

	protoc := os.Getenv("PROTOC")
	if protoc == "" {
		if protoc, err = exec.LookPath("protoc"); err != nil {
			return "", errors.New("protoc not in PATH")
		}
	}
	if v := toolVersion(protoc); v != wantProtoc {
		return "", fmt.Errorf("protoc is %s, the committed code was made by %s", orNone(v), wantProtoc)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return "", errors.New("bash (to run scripts/genproto.sh) not in PATH")
	}

	// Where the script installs the plugins, then PATH.
	var dirs []string
	if d := os.Getenv("ASPS_PROTO_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(os.TempDir(), "asps-proto-tools"))
	if p, err := exec.LookPath("protoc-gen-go"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	var seen []string
	for _, d := range dirs {
		g, r := toolVersion(filepath.Join(d, "protoc-gen-go")), toolVersion(filepath.Join(d, "protoc-gen-go-grpc"))
		if g == wantGo && r == wantGRPC {
			return d, nil
		}
		seen = append(seen, fmt.Sprintf("%s: protoc-gen-go %s, protoc-gen-go-grpc %s", d, orNone(g), orNone(r)))
	}
	return "", fmt.Errorf("protoc-gen-go %s and protoc-gen-go-grpc %s not found together (%s)",
		wantGo, wantGRPC, strings.Join(seen, "; "))
}

// toolVersion runs "tool --version" and returns the last word with a leading
// "v" ("libprotoc 3.21.12" -> "v3.21.12"), or "" when the tool does not run.
func toolVersion(tool string) string {
	out, err := exec.Command(tool, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return "v" + strings.TrimPrefix(f[len(f)-1], "v")
}

func orNone(v string) string {
	if v == "" {
		return "missing"
	}
	return v
}

// walk returns the files under root whose names end in suffix, as
// slash-separated paths relative to root.
func walk(t *testing.T, root, suffix string) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, suffix) {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readAll(t *testing.T, root string, names map[string]bool) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for n := range names {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(n)))
		if err != nil {
			t.Fatal(err)
		}
		m[n] = b
	}
	return m
}

func keys(ms ...map[string][]byte) []string {
	var ks []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(ks, k) {
				ks = append(ks, k)
			}
		}
	}
	return ks
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// firstDiff describes the first line where a (committed) and b (fresh)
// differ.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return fmt.Sprintf("first difference at line %d:\n  committed: %q\n  generated: %q", i+1, x, y)
		}
	}
	return "files differ"
}
