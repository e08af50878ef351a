package grpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// reflectionMethods are the server reflection services' one method, newest
// first. v1alpha's messages are v1's under another package name, so v1's Go
// types serve both on the wire.
var reflectionMethods = []string{
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}

// reflectFiles asks the server's reflection service for the file that
// defines service and every file it imports, and returns them as a
// registry. ctx bounds the whole exchange.
func reflectFiles(ctx context.Context, cc grpc.ClientConnInterface, service string) (*protoregistry.Files, error) {
	var err error
	for _, method := range reflectionMethods {
		var files *protoregistry.Files
		files, err = reflectFilesWith(ctx, cc, method, service)
		if status.Code(err) != codes.Unimplemented {
			return files, err
		}
	}
	return nil, errors.New("the server offers no reflection service: describe the method with protoFile or protoset")
}

func reflectFilesWith(ctx context.Context, cc grpc.ClientConnInterface, method, service string) (*protoregistry.Files, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
	if err != nil {
		return nil, err
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) ([][]byte, error) {
		if err := stream.SendMsg(req); err != nil {
			// The stream's status says why it failed.
			if _, rerr := recvReflection(stream); rerr != nil {
				return nil, rerr
			}
			return nil, err
		}
		return recvReflection(stream)
	}
	got := map[string]*descriptorpb.FileDescriptorProto{}
	add := func(raw [][]byte) error {
		for _, b := range raw {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("server reflection sent a file descriptor that does not parse: %w", err)
			}
			got[fd.GetName()] = fd
		}
		return nil
	}
	raw, err := ask(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: service}})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("the server does not know service %s", service)
	}
	if err != nil {
		return nil, err
	}
	if err := add(raw); err != nil {
		return nil, err
	}
	// Servers send the imports they have not sent on this stream yet; ask
	// for any that are still missing, and fall back to the files compiled
	// into this binary (the well-known types) for those the server lacks.
	for {
		missing := missingImports(got)
		if len(missing) == 0 {
			break
		}
		for _, name := range missing {
			raw, err := ask(&reflectionpb.ServerReflectionRequest{
				MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: name}})
			if err == nil {
				err = add(raw)
			}
			if _, ok := got[name]; ok {
				continue
			}
			fd, ferr := protoregistry.GlobalFiles.FindFileByPath(name)
			if ferr != nil {
				return nil, fmt.Errorf("server reflection does not describe %s, which %s needs: %w", name, service, cmpErr(err, ferr))
			}
			got[name] = protodesc.ToFileDescriptorProto(fd)
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range got {
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("server reflection's descriptors: %w", err)
	}
	_ = stream.CloseSend()
	return files, nil
}

// recvReflection reads one answer: its file descriptors, or its error as a
// gRPC status error.
func recvReflection(stream grpc.ClientStream) ([][]byte, error) {
	resp := new(reflectionpb.ServerReflectionResponse)
	if err := stream.RecvMsg(resp); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("server reflection ended the stream without an answer")
		}
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
	}
	fds := resp.GetFileDescriptorResponse()
	if fds == nil {
		return nil, errors.New("server reflection answered without file descriptors")
	}
	return fds.GetFileDescriptorProto(), nil
}

// missingImports lists the files that got's files import and got lacks.
func missingImports(got map[string]*descriptorpb.FileDescriptorProto) []string {
	var missing []string
	seen := map[string]bool{}
	for _, fd := range got {
		for _, dep := range fd.GetDependency() {
			if _, ok := got[dep]; !ok && !seen[dep] {
				seen[dep] = true
				missing = append(missing, dep)
			}
		}
	}
	return missing
}

// cmpErr prefers the server's error to the local lookup's.
func cmpErr(server, local error) error {
	if server != nil {
		return server
	}
	return local
}
