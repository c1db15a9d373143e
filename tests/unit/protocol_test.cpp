#include <bai/image_reference.hpp>
#include <bai/protocol.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bai::protocol {
namespace {

Quantity q(std::string_view text) { return Quantity::parse(text).value(); }

AgentState sampleState() {
  AgentState s;
  s.rpcAddress = "127.0.0.1:6001";
  s.region = "local";
  s.scalingGroup = "default";
  s.architecture = "x86_64";
  s.version = "26.11.0";
  s.available = ResourceSlot{{SlotName::of("cpu"), 8}, {SlotName::of("cuda.shares"), q("3.5")}};
  s.occupied = ResourceSlot{{SlotName::of("cpu"), 2}};
  s.largestAllocatable = ResourceSlot{{SlotName::of("cpu"), 6}, {SlotName::of("cuda.shares"), q("1.25")}};
  s.slotTypes = {{"cpu", SlotType::Count}, {"mem", SlotType::Bytes}, {"cuda.shares", SlotType::Count}};
  s.slotQuanta = {{"cpu", Quantity(1)}, {"cuda.shares", q("0.01")}};
  s.plugins = {{"cpu", "26.11.0", "cpu", R"({"pus":2})"},
               {"acme", "1.0", "acme", "{}", "health did not return within 5000 ms"}};
  s.deviceHealth = {{"cuda", "0", "unhealthy", "XID 79"}};
  s.sessions = {{"s1", SessionState::Running}};
  return s;
}

TEST(Protocol, HeartbeatRoundTrip) {
  Heartbeat h{"agent-1", 42, sampleState()};
  auto back = Heartbeat::fromJson(h.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->agentId, "agent-1");
  EXPECT_EQ(back->digest, 42u);
  ASSERT_TRUE(back->state.has_value());
  EXPECT_EQ(back->state->available.get("cuda.shares"), q("3.5"));
  EXPECT_EQ(back->state->largestAllocatable.get("cuda.shares"), q("1.25"));
  EXPECT_EQ(back->state->slotTypes.at("mem"), SlotType::Bytes);
  EXPECT_EQ(back->state->slotQuanta.at("cuda.shares"), q("0.01"));
  EXPECT_EQ(back->state->slotQuanta.at("cpu"), Quantity(1));
  EXPECT_EQ(back->state->plugins.at(0).extraInfoJson, R"({"pus":2})");
  EXPECT_FALSE(back->state->plugins.at(0).withdrawn.has_value());
  EXPECT_EQ(back->state->plugins.at(1).withdrawn, "health did not return within 5000 ms");
  EXPECT_EQ(back->state->deviceHealth.at(0).reason, "XID 79");
  EXPECT_EQ(back->state->sessions.at(0).state, SessionState::Running);
  EXPECT_EQ(back->toJson(), h.toJson());

  Heartbeat digestOnly{"agent-1", 43, std::nullopt};
  auto small = Heartbeat::fromJson(digestOnly.toJson());
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(small->state.has_value());
  EXPECT_LT(digestOnly.toJson().size(), 80u);
}

TEST(Protocol, EventsRoundTrip) {
  EventBatch batch{"agent-1", {{1, "s1", EventKind::Started, std::nullopt, "", 1000},
                               {2, "s1", EventKind::Exited, 3, "", 2000},
                               {3, "s2", EventKind::Failed, std::nullopt, "command not found", 3000}}};
  auto back = EventBatch::fromJson(batch.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->events.size(), 3u);
  EXPECT_EQ(back->events[1].exitCode, 3);
  EXPECT_EQ(back->events[2].reason, "command not found");
  EXPECT_EQ(back->toJson(), batch.toJson());
  EXPECT_EQ(EventAck::fromJson(EventAck{3}.toJson())->ackedThrough, 3u);
}

TEST(Protocol, SessionsRoundTrip) {
  CreateSessionRequest request{"s-1", {"/bin/sh", "-c", "exit 3"}, {{"A", "b"}}, {{SlotName::of("cpu"), 1}}};
  auto back = CreateSessionRequest::fromJson(request.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->command, request.command);
  EXPECT_EQ(back->slots.get("cpu"), Quantity(1));

  SessionInfo info{"s-1", SessionState::Exited, 3, "", {{"cpu", {{"0", Quantity(1)}}}}, 1234, 10, 20};
  auto infoBack = SessionInfo::fromJson(info.toJson());
  ASSERT_TRUE(infoBack.ok()) << infoBack.error().message;
  EXPECT_EQ(infoBack->exitCode, 3);
  EXPECT_EQ(infoBack->allocation.at("cpu").at("0"), Quantity(1));
  EXPECT_EQ(infoBack->toJson(), info.toJson());
}

// Quanta are optional (an older agent sends none) and each must be a positive decimal.
TEST(Protocol, SlotQuantaAreOptionalAndPositive) {
  nlohmann::json doc = nlohmann::json::parse(Heartbeat{"agent-1", 1, sampleState()}.toJson());
  doc["state"].erase("slot_quanta");
  auto older = Heartbeat::fromJson(doc.dump());
  ASSERT_TRUE(older.ok()) << older.error().message;
  EXPECT_TRUE(older->state->slotQuanta.empty());
  for (const char* bad : {R"("0")", R"("-0.01")", R"(0.01)", R"("Infinity")"}) {
    doc["state"]["slot_quanta"] = nlohmann::json::object({{"cuda.shares", nlohmann::json::parse(bad)}});
    auto refused = Heartbeat::fromJson(doc.dump());
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().message, "heartbeat.state.slot_quanta.cuda.shares: expected a positive decimal string") << bad;
  }
}

TEST(Protocol, RefusesBadDocumentsNamingTheField) {
  auto error = [](auto result) { return result.ok() ? std::string() : result.error().message; };
  EXPECT_EQ(error(Heartbeat::fromJson("{")).rfind("heartbeat: malformed JSON: ", 0), 0u);
  EXPECT_EQ(error(Heartbeat::fromJson("[]")), "heartbeat: expected a JSON object");
  EXPECT_EQ(error(Heartbeat::fromJson(R"({"agent_id":"a","digest":1})")), "heartbeat: missing 'protocol' version");
  EXPECT_EQ(error(Heartbeat::fromJson(R"({"protocol":2,"agent_id":"a","digest":1})")),
            "heartbeat: protocol version 2 is not supported (this side speaks 1)");
  EXPECT_EQ(error(Heartbeat::fromJson(R"({"protocol":1,"digest":1})")), "heartbeat: missing 'agent_id'");
  EXPECT_EQ(error(Heartbeat::fromJson(R"({"protocol":1,"agent_id":"a","digest":-1})")),
            "heartbeat.digest: expected a non-negative integer");
  EXPECT_EQ(error(Heartbeat::fromJson(R"({"protocol":1,"agent_id":"a","digest":1,"state":{}})")),
            "heartbeat.state: missing 'rpc_address'");
  EXPECT_EQ(error(EventBatch::fromJson(R"({"protocol":1,"agent_id":"a","events":[{"seq":1,"session_id":"s","kind":"exited","at_ms":1}]})")),
            "events[]: an 'exited' event needs 'exit_code'");
  // 64-bit numbers must not wrap into valid 32-bit ones (4294967296 read as exit code 0).
  EXPECT_EQ(error(Heartbeat::fromJson(R"({"protocol":4294967297,"agent_id":"a","digest":1})")),
            "heartbeat: protocol version 4294967297 is not supported (this side speaks 1)");
  EXPECT_EQ(error(EventBatch::fromJson(
                R"({"protocol":1,"agent_id":"a","events":[{"seq":1,"session_id":"s","kind":"exited","at_ms":1,"exit_code":4294967296}]})")),
            "events[].exit_code: expected an exit code (a 32-bit integer)");
  EXPECT_EQ(error(EventBatch::fromJson(R"({"protocol":1,"agent_id":"a","events":[{"seq":1,"session_id":"s","kind":"paused","at_ms":1}]})")),
            "events[].kind: unknown kind 'paused'");
  EXPECT_EQ(error(CreateSessionRequest::fromJson(R"({"protocol":1,"session_id":"s","command":[]})")),
            "create-session.command: empty (only a session with an image may leave it out)");
  for (const char* id : {"../x", ".", "..", "a.b", ""}) {
    EXPECT_EQ(error(CreateSessionRequest::fromJson(R"({"protocol":1,"session_id":")" + std::string(id) +
                                                   R"(","command":["true"]})")),
              "create-session.session_id: use 1 to 128 letters, digits, '-' or '_'")
        << id;
  }
  EXPECT_EQ(error(CreateSessionRequest::fromJson(R"({"protocol":1,"session_id":"s","command":["true"],"slots":{"cpu":"-1"}})")),
            "create-session.slots.cpu: negative amount -1");
  EXPECT_EQ(error(CreateSessionRequest::fromJson(R"({"protocol":1,"session_id":"s","command":["true"],"slots":{"cpu":"two"}})")),
            "create-session.slots: resource slot 'cpu': 'two' is not a decimal number");
  EXPECT_EQ(error(CreateSessionRequest::fromJson(R"({"protocol":1,"session_id":"s","command":[1]})")),
            "create-session.command: expected strings");
  EXPECT_EQ(error(SessionInfo::fromJson(R"({"id":"s","state":"sleeping"})")), "unknown session state 'sleeping'");
}

TEST(Protocol, RuntimesAndImagesTravelAndAnOlderAgentRunsProcessesOnly) {
  AgentState state = sampleState();
  state.runtimes = {{kProcessRuntime, true, ""}, {kContainerRuntime, false, "engine at /run/docker.sock is unreachable"}};
  state.images = {{"localhost/bai-test/busybox:1", "sha256:15b7", 2129696}};
  auto back = Heartbeat::fromJson(Heartbeat{"agent-1", 1, state}.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->state->runtimes.size(), 2u);
  EXPECT_FALSE(back->state->runtimes[1].available);
  EXPECT_EQ(back->state->runtimes[1].reason, "engine at /run/docker.sock is unreachable");
  ASSERT_EQ(back->state->images.size(), 1u);
  EXPECT_EQ(back->state->images[0].sizeBytes, 2129696);

  nlohmann::json doc = nlohmann::json::parse(Heartbeat{"agent-1", 1, sampleState()}.toJson());
  doc["state"].erase("runtimes");
  doc["state"].erase("images");
  auto older = Heartbeat::fromJson(doc.dump());
  ASSERT_TRUE(older.ok()) << older.error().message;
  ASSERT_EQ(older->state->runtimes.size(), 1u);
  EXPECT_EQ(older->state->runtimes[0].kind, kProcessRuntime);

  doc["state"]["runtimes"] = nlohmann::json::parse(R"([{"kind": "vm", "available": true}])");
  auto unknown = Heartbeat::fromJson(doc.dump());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "heartbeat.state.runtimes[].kind: unknown runtime 'vm'");

  RuntimeInventory inventory{state.runtimes, state.images};
  auto inventoryBack = RuntimeInventory::fromJson(inventory.toJson());
  ASSERT_TRUE(inventoryBack.ok()) << inventoryBack.error().message;
  EXPECT_EQ(inventoryBack->toJson(), inventory.toJson());
}

TEST(Protocol, ASessionWithAnImageMayLeaveOutItsCommandAndCarriesItsPullPolicy) {
  CreateSessionRequest request{"s-1", {}, {}, {}, SessionOwner{200001, 200001, "u"}};
  request.image = "pytorch/pytorch:2.4";
  request.pullPolicy = PullPolicy::IfMissing;
  auto back = CreateSessionRequest::fromJson(request.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->image, "pytorch/pytorch:2.4");
  EXPECT_EQ(back->pullPolicy, PullPolicy::IfMissing);
  EXPECT_TRUE(back->command.empty());

  nlohmann::json doc = nlohmann::json::parse(request.toJson());
  doc["image"] = "UPPER/case";
  EXPECT_EQ(CreateSessionRequest::fromJson(doc.dump()).error().message,
            "create-session.image: 'UPPER/case' is not an image reference");
  doc["image"] = "busybox";
  doc["pull_policy"] = "sometimes";
  EXPECT_NE(CreateSessionRequest::fromJson(doc.dump()).error().message.find("create-session.pull_policy: unknown pull policy"),
            std::string::npos);
  doc.erase("image");
  doc.erase("pull_policy");
  EXPECT_NE(CreateSessionRequest::fromJson(doc.dump()).error().message.find("create-session.command: empty"),
            std::string::npos)
      << "only a session with an image may leave out its command";
}

TEST(ImageReference, AcceptsWhatEnginesAcceptAndNothingElse) {
  for (const char* good : {"busybox", "busybox:1.36", "library/busybox:latest", "docker.io/pytorch/pytorch:2.4.0-cuda12.1",
                           "localhost/bai-test/busybox:1", "registry.example.com:5000/team/img_name__x-y.z:v1",
                           "nvcr.io/nvidia/pytorch:24.01-py3",
                           "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_TRUE(isImageReference(good)) << good;
  }
  for (const char* bad : {"", "Busybox", "busy box", "busybox:", ":tag", "a//b", "-busybox", "busybox:.x",
                          "busybox@sha256:xyz", "img:" "tag/with/slash?", "../etc/passwd", "busybox\n", "a/b/"}) {
    EXPECT_FALSE(isImageReference(bad)) << bad;
  }
  EXPECT_FALSE(isImageReference(std::string(256, 'a')));
}

TEST(ImageReference, KeysMatchTheSpellingsOfOneImageAndAllowListsUseGlobs) {
  EXPECT_EQ(imageKey("busybox"), "busybox:latest");
  EXPECT_EQ(imageKey("docker.io/library/busybox:latest"), "busybox:latest");
  EXPECT_EQ(imageKey("localhost/bai-test/busybox:1"), "bai-test/busybox:1");
  EXPECT_EQ(imageKey("bai-test/busybox:1"), "bai-test/busybox:1");
  EXPECT_EQ(imageKey("registry.example.com:5000/team/img"), "registry.example.com:5000/team/img:latest");
  EXPECT_TRUE(imageAllowed("localhost/bai-test/busybox:1", "bai-test/*"));
  EXPECT_TRUE(imageAllowed("pytorch/pytorch:2.4", "docker.io/pytorch/*"));
  EXPECT_TRUE(imageAllowed("anything/at:all", "*"));
  EXPECT_FALSE(imageAllowed("evil/bai-test:1", "bai-test/*"));
  EXPECT_FALSE(imageAllowed("bai-test/busybox:1", "bai-test/busybox:2"));
}

TEST(ServicePorts, ParseTheCliAndLabelFormsAndNameWhatIsWrong) {
  auto jupyter = ServicePort::parse("jupyter:8888");
  ASSERT_TRUE(jupyter);
  EXPECT_EQ(*jupyter, (ServicePort{"jupyter", "tcp", 8888}));
  EXPECT_EQ(*ServicePort::parse("tensorboard:http:6006"), (ServicePort{"tensorboard", "http", 6006}));
  for (const char* bad : {"jupyter", "jupyter:0", "jupyter:65536", "Jupyter:80", "9x:80", "a:ftp:21", "a:b:c:1", ":80",
                          "jupyter:80x", "a-very-long-service-name-over-32-chars:80"}) {
    auto parsed = ServicePort::parse(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_NE(parsed.error().message.find(bad), std::string::npos) << parsed.error().message;
  }
  auto list = parseServicePortList("jupyter:http:8888, tensorboard:http:6006,");
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_EQ(list->size(), 2u);
  EXPECT_FALSE(parseServicePortList("a:1,a:2"));
  EXPECT_EQ(servicePortEnvName("jupyter-lab"), "BAI_SERVICE_PORT_JUPYTER_LAB");
}

TEST(Protocol, AnInteractiveSessionCarriesItsTerminalAndServices) {
  CreateSessionRequest request;
  request.sessionId = "s1";
  request.command = {"bash"};
  request.tty = true;
  request.servicePorts = {{"jupyter", "http", 8888}};
  auto back = CreateSessionRequest::fromJson(request.toJson());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(back->tty);
  EXPECT_TRUE(back->openStdin);  // a terminal is an open stdin
  EXPECT_EQ(back->servicePorts, request.servicePorts);
  CreateSessionRequest plainRequest;
  plainRequest.sessionId = "s2";
  plainRequest.command = {"x"};
  const std::string plainJson = plainRequest.toJson();
  auto plain = CreateSessionRequest::fromJson(plainJson);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->openStdin);
  EXPECT_EQ(plainJson.find("stdin"), std::string::npos);  // nothing new on the wire for a plain session
  auto withField = [&](const std::string& field) { return plainJson.substr(0, plainJson.size() - 1) + "," + field + "}"; };
  auto twice = CreateSessionRequest::fromJson(withField(R"("service_ports":[{"name":"a","port":1},{"name":"a","port":2}])"));
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("service_ports"), std::string::npos);
  EXPECT_FALSE(CreateSessionRequest::fromJson(withField(R"("tty":"yes")")));
  EXPECT_TRUE(CreateSessionRequest::fromJson(withField(R"("tty":true)")));

  SessionInfo info;
  info.id = "s1";
  info.services = {{"jupyter", "http", 30001}};
  EXPECT_EQ(SessionInfo::fromJson(info.toJson())->services, info.services);
}

TEST(Protocol, ApiErrorShape) {
  ApiError e{"unknown-slot", "Unknown resource slot", "slot 'tpu.device' is not served by this agent"};
  EXPECT_EQ(e.toJson(), R"({"detail":"slot 'tpu.device' is not served by this agent","title":"Unknown resource slot","type":"unknown-slot"})");
  EXPECT_EQ(ApiError::fromJson(e.toJson())->type, "unknown-slot");
}

}  // namespace
}  // namespace bai::protocol
