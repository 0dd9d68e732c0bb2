// The slices of containerd 1.6's gRPC API ferry speaks, as proto text. Field numbers are containerd's own
// (api/services/*/v1, api/types); messages and RPCs ferry never sends are left out, gogoproto options dropped.

/** The well-known types the services below refer to, so nothing has to be read from disk to resolve them. */
const GOOGLE = `
syntax = "proto3";
package google.protobuf;
message Empty {}
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Any { string type_url = 1; bytes value = 2; }
message FieldMask { repeated string paths = 1; }
`;

const GOOGLE_RPC = `
syntax = "proto3";
package google.rpc;
message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
`;

const TYPES = `
syntax = "proto3";
package containerd.types;
message Descriptor {
  string media_type = 1;
  string digest = 2;
  int64 size = 3;
  map<string, string> annotations = 5;
}
message Mount {
  string type = 1;
  string source = 2;
  string target = 3;
  repeated string options = 4;
}
message Platform { string os = 1; string architecture = 2; string variant = 3; }
`;

const VERSION = `
syntax = "proto3";
package containerd.services.version.v1;
service Version { rpc Version(google.protobuf.Empty) returns (VersionResponse); }
message VersionResponse { string version = 1; string revision = 2; }
`;

const CONTENT = `
syntax = "proto3";
package containerd.services.content.v1;
service Content {
  rpc Info(InfoRequest) returns (InfoResponse);
  rpc Update(UpdateRequest) returns (UpdateResponse);
  rpc List(ListContentRequest) returns (stream ListContentResponse);
  rpc Status(StatusRequest) returns (StatusResponse);
  rpc Write(stream WriteContentRequest) returns (stream WriteContentResponse);
  rpc Abort(AbortRequest) returns (google.protobuf.Empty);
  rpc Read(ReadContentRequest) returns (stream ReadContentResponse);
}
message Info {
  string digest = 1;
  int64 size = 2;
  google.protobuf.Timestamp created_at = 3;
  google.protobuf.Timestamp updated_at = 4;
  map<string, string> labels = 5;
}
message InfoRequest { string digest = 1; }
message InfoResponse { Info info = 1; }
message UpdateRequest { Info info = 1; google.protobuf.FieldMask update_mask = 2; }
message UpdateResponse { Info info = 1; }
message ListContentRequest { repeated string filters = 1; }
message ListContentResponse { repeated Info info = 1; }
message Status {
  google.protobuf.Timestamp started_at = 1;
  google.protobuf.Timestamp updated_at = 2;
  string ref = 3;
  int64 offset = 4;
  int64 total = 5;
  string expected = 6;
}
message StatusRequest { string ref = 1; }
message StatusResponse { Status status = 1; }
enum WriteAction { STAT = 0; WRITE = 1; COMMIT = 2; }
message WriteContentRequest {
  WriteAction action = 1;
  string ref = 2;
  int64 total = 3;
  string expected = 4;
  int64 offset = 5;
  bytes data = 6;
  map<string, string> labels = 7;
}
message WriteContentResponse {
  WriteAction action = 1;
  google.protobuf.Timestamp started_at = 2;
  google.protobuf.Timestamp updated_at = 3;
  int64 offset = 4;
  int64 total = 5;
  string digest = 6;
}
message AbortRequest { string ref = 1; }
message ReadContentRequest { string digest = 1; int64 offset = 2; int64 size = 3; }
message ReadContentResponse { int64 offset = 1; bytes data = 2; }
`;

const IMAGES = `
syntax = "proto3";
package containerd.services.images.v1;
service Images {
  rpc Get(GetImageRequest) returns (GetImageResponse);
  rpc List(ListImagesRequest) returns (ListImagesResponse);
  rpc Create(CreateImageRequest) returns (CreateImageResponse);
  rpc Update(UpdateImageRequest) returns (UpdateImageResponse);
  rpc Delete(DeleteImageRequest) returns (google.protobuf.Empty);
}
message Image {
  string name = 1;
  map<string, string> labels = 2;
  containerd.types.Descriptor target = 3;
  google.protobuf.Timestamp created_at = 7;
  google.protobuf.Timestamp updated_at = 8;
}
message GetImageRequest { string name = 1; }
message GetImageResponse { Image image = 1; }
message CreateImageRequest { Image image = 1; }
message CreateImageResponse { Image image = 1; }
message UpdateImageRequest { Image image = 1; google.protobuf.FieldMask update_mask = 2; }
message UpdateImageResponse { Image image = 1; }
message ListImagesRequest { repeated string filters = 1; }
message ListImagesResponse { repeated Image images = 1; }
message DeleteImageRequest { string name = 1; bool sync = 2; }
`;

const LEASES = `
syntax = "proto3";
package containerd.services.leases.v1;
service Leases {
  rpc Create(CreateRequest) returns (CreateResponse);
  rpc Delete(DeleteRequest) returns (google.protobuf.Empty);
}
message Lease { string id = 1; google.protobuf.Timestamp created_at = 2; map<string, string> labels = 3; }
message CreateRequest { string id = 1; map<string, string> labels = 3; }
message CreateResponse { Lease lease = 1; }
message DeleteRequest { string id = 1; bool sync = 2; }
`;

const SNAPSHOTS = `
syntax = "proto3";
package containerd.services.snapshots.v1;
service Snapshots {
  rpc Prepare(PrepareSnapshotRequest) returns (PrepareSnapshotResponse);
  rpc Commit(CommitSnapshotRequest) returns (google.protobuf.Empty);
  rpc Remove(RemoveSnapshotRequest) returns (google.protobuf.Empty);
  rpc Stat(StatSnapshotRequest) returns (StatSnapshotResponse);
  rpc List(ListSnapshotsRequest) returns (stream ListSnapshotsResponse);
}
message PrepareSnapshotRequest { string snapshotter = 1; string key = 2; string parent = 3; map<string, string> labels = 4; }
message PrepareSnapshotResponse { repeated containerd.types.Mount mounts = 1; }
message RemoveSnapshotRequest { string snapshotter = 1; string key = 2; }
message CommitSnapshotRequest { string snapshotter = 1; string name = 2; string key = 3; map<string, string> labels = 4; }
message StatSnapshotRequest { string snapshotter = 1; string key = 2; }
enum Kind { UNKNOWN = 0; VIEW = 1; ACTIVE = 2; COMMITTED = 3; }
message Info {
  string name = 1;
  string parent = 2;
  Kind kind = 3;
  google.protobuf.Timestamp created_at = 4;
  google.protobuf.Timestamp updated_at = 5;
  map<string, string> labels = 6;
}
message StatSnapshotResponse { Info info = 1; }
message ListSnapshotsRequest { string snapshotter = 1; repeated string filters = 2; }
message ListSnapshotsResponse { repeated Info info = 1; }
`;

const DIFF = `
syntax = "proto3";
package containerd.services.diff.v1;
service Diff { rpc Apply(ApplyRequest) returns (ApplyResponse); }
message ApplyRequest {
  containerd.types.Descriptor diff = 1;
  repeated containerd.types.Mount mounts = 2;
  map<string, google.protobuf.Any> payloads = 3;
}
message ApplyResponse { containerd.types.Descriptor applied = 1; }
`;

const INTROSPECTION = `
syntax = "proto3";
package containerd.services.introspection.v1;
service Introspection {
  rpc Plugins(PluginsRequest) returns (PluginsResponse);
  rpc Server(google.protobuf.Empty) returns (ServerResponse);
}
message ServerResponse { string uuid = 1; }
message Plugin {
  string type = 1;
  string id = 2;
  repeated string requires = 3;
  repeated containerd.types.Platform platforms = 4;
  map<string, string> exports = 5;
  repeated string capabilities = 6;
  google.rpc.Status init_err = 7;
}
message PluginsRequest { repeated string filters = 1; }
message PluginsResponse { repeated Plugin plugins = 1; }
`;

/** Every file, dependencies first; all are parsed into one root, so cross-package names resolve there. */
export const PROTO_FILES: readonly string[] = [GOOGLE, GOOGLE_RPC, TYPES, VERSION, CONTENT, IMAGES, LEASES, SNAPSHOTS, DIFF, INTROSPECTION];
