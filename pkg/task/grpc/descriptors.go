package grpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/iter8-tools/iter8/pkg/experiment"
)

// loadDescriptors reads and compiles protoFile, or reads protoset, into
// cfg.Protoset, and returns the methods they describe; nil (and no errors)
// when neither is set, as the method is then found by server reflection.
func loadDescriptors(in *inputs, d *experiment.Decoding, cfg *Config) (*methodSet, field.ErrorList) {
	p := d.Path
	switch {
	case in.ProtoFile != "" && in.Protoset != "":
		return nil, field.ErrorList{field.Forbidden(p.Child("protoset"), "set protoFile or protoset, not both")}
	case len(in.ImportPaths) > 0 && in.ProtoFile == "":
		return nil, field.ErrorList{field.Forbidden(p.Child("importPaths"), "importPaths are where a protoFile's imports are found; set protoFile too")}
	case in.ProtoFile != "":
		path := p.Child("protoFile")
		if filepath.Ext(in.ProtoFile) != ".proto" {
			return nil, field.ErrorList{field.Invalid(path, in.ProtoFile, "want a file ending in .proto")}
		}
		if d.ReadFile == nil {
			return nil, field.ErrorList{field.Invalid(path, in.ProtoFile, "files cannot be read here")}
		}
		set, err := compileProtoFile(in.ProtoFile, in.ImportPaths, d.ReadFile)
		if err != nil {
			return nil, field.ErrorList{field.Invalid(path, in.ProtoFile, err.Error())}
		}
		return useSet(cfg, set, path, "protoFile "+in.ProtoFile)
	case in.Protoset != "":
		path := p.Child("protoset")
		data, fe := d.File(in.Protoset, path)
		if fe != nil {
			return nil, field.ErrorList{fe}
		}
		set := new(descriptorpb.FileDescriptorSet)
		if err := proto.Unmarshal(data, set); err != nil {
			return nil, field.ErrorList{field.Invalid(path, in.Protoset, "not a FileDescriptorSet (protoc --descriptor_set_out): "+err.Error())}
		}
		return useSet(cfg, set, path, "protoset "+in.Protoset)
	}
	return nil, nil
}

// useSet checks that set is complete and keeps it, serialized, for the load.
func useSet(cfg *Config, set *descriptorpb.FileDescriptorSet, path *field.Path, source string) (*methodSet, field.ErrorList) {
	files, err := protodesc.NewFiles(set)
	if err != nil {
		detail := err.Error()
		if strings.Contains(detail, "could not resolve import") {
			detail += " (a protoset needs its imports: protoc --include_imports)"
		}
		return nil, field.ErrorList{field.Invalid(path, field.OmitValueType{}, detail)}
	}
	if cfg.Protoset, err = (proto.MarshalOptions{Deterministic: true}).Marshal(set); err != nil {
		return nil, field.ErrorList{field.InternalError(path, err)}
	}
	return &methodSet{files: files, source: source}, nil
}

// compileProtoFile compiles a proto file and everything it imports, reading
// files through readFile. Like ghz (and protoc), imports are looked up in
// the proto file's own folder, then relative to the spec, then in
// importPaths; the well-known google/protobuf files are built in. Each file
// is bounded by experiment.MaxFileSize, as every spec file is.
func compileProtoFile(name string, importPaths []string, readFile func(string) ([]byte, error)) (*descriptorpb.FileDescriptorSet, error) {
	var paths []string
	if dir := filepath.Dir(name); dir != "." {
		paths = append(paths, dir)
	}
	paths = append(append(paths, "."), importPaths...)
	if filepath.IsAbs(name) {
		name = filepath.Base(name)
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		ImportPaths: paths,
		Accessor: func(path string) (io.ReadCloser, error) {
			data, err := readFile(path)
			if err == nil && len(data) > experiment.MaxFileSize {
				err = fmt.Errorf("%s is larger than %d MiB", path, experiment.MaxFileSize>>20)
			}
			if err != nil {
				return nil, err
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	})}
	files, err := c.Compile(context.Background(), name)
	if err != nil {
		return nil, err
	}
	set := new(descriptorpb.FileDescriptorSet)
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	for _, fd := range files {
		add(fd)
	}
	return set, nil
}

// methodSet finds methods among descriptors known at decode time.
type methodSet struct {
	files *protoregistry.Files
	// source names where the descriptors came from, for messages.
	source string
}

// find looks up a package.Service/Method call.
func (m *methodSet) find(call string, path *field.Path) (protoreflect.MethodDescriptor, *field.Error) {
	svc, method, _ := strings.Cut(call, "/")
	d, err := m.files.FindDescriptorByName(protoreflect.FullName(svc))
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok {
		return nil, field.Invalid(path, call, fmt.Sprintf("%s has no service %s; it has %s", m.source, svc, m.services()))
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		var names []string
		for i := range sd.Methods().Len() {
			names = append(names, string(sd.Methods().Get(i).Name()))
		}
		return nil, field.Invalid(path, call, fmt.Sprintf("service %s has no method %s; it has %s", svc, method, list(names)))
	}
	return md, nil
}

// services lists the services that m knows.
func (m *methodSet) services() string {
	var names []string
	m.files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			names = append(names, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	slices.Sort(names)
	return list(names)
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// protoPrefix is how protobuf-go starts its errors (with a space that is
// sometimes a non-breaking one, on purpose) and the position, which says
// nothing in compacted JSON.
var protoPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

// checkMessage checks that a JSON message fits a method's input type.
func checkMessage(input protoreflect.MessageDescriptor, data []byte) error {
	if err := protojson.Unmarshal(data, dynamicpb.NewMessage(input)); err != nil {
		return errors.New("does not fit " + string(input.FullName()) + ": " + protoPrefix.ReplaceAllString(err.Error(), ""))
	}
	return nil
}
