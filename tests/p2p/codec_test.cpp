// The p2p codecs against published test vectors: RFC 8032 (Ed25519), RFC 7748 (X25519), the
// cacophony Noise_XX_25519_ChaChaPoly_SHA256 vector, the libp2p peer-id spec's keys, and the
// multiaddr/multistream/yamux encodings.
#include <gtest/gtest.h>

#include "p2p/crypto.h"
#include "p2p/frame.h"
#include "p2p/identify.h"
#include "p2p/multiaddr.h"
#include "p2p/multistream.h"
#include "p2p/noise.h"
#include "p2p/peer_id.h"
#include "p2p/yamux.h"
#include "util/error.h"

namespace cidrun::p2p {
namespace {

Key32 key(std::string_view hex) {
  Bytes b = from_hex(hex);
  Key32 k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

TEST(Crypto, Ed25519Rfc8032Test1) {
  Ed25519Key k = Ed25519Key::from_seed(
      key("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  EXPECT_EQ(to_hex(k.public_key),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  Bytes sig = k.sign({});
  EXPECT_EQ(to_hex(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3"
            "9701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(ed25519_verify(k.public_key, {}, sig));
  sig[3] ^= 1;
  EXPECT_FALSE(ed25519_verify(k.public_key, {}, sig));
}

TEST(Crypto, X25519Rfc7748) {
  X25519Key alice = X25519Key::from_private(
      key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  X25519Key bob = X25519Key::from_private(
      key("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  EXPECT_EQ(to_hex(alice.public_key),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(to_hex(alice.dh(bob.public_key)),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(alice.dh(bob.public_key), bob.dh(alice.public_key));
  // A small-order point (all zeros) gives the all-zero secret: refused.
  EXPECT_THROW(alice.dh(Key32{}), Error);
}

// Noise_XX_25519_ChaChaPoly_SHA256 from the cacophony test vectors (prologue "John Galt").
TEST(Noise, CacophonyXXVector) {
  Bytes prologue = from_hex("4a6f686e2047616c74");
  NoiseXX init(NoiseXX::Role::kInitiator,
               X25519Key::from_private(
                   key("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1")),
               prologue,
               X25519Key::from_private(
                   key("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a")));
  NoiseXX resp(NoiseXX::Role::kResponder,
               X25519Key::from_private(
                   key("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893")),
               prologue,
               X25519Key::from_private(
                   key("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b")));
  struct Msg {
    const char* payload;
    const char* ciphertext;
  };
  const Msg msgs[] = {
      {"4c756477696720766f6e204d69736573",
       "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d6"
       "9736573"},
      {"4d757272617920526f746862617264",
       "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce"
       "2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b"
       "5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad"},
      {"462e20412e20486179656b",
       "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0"
       "865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030"},
      {"4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"},
      {"4a65616e2d426170746973746520536179",
       "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"},
      {"457567656e2042f6686d20766f6e2042617765726b",
       "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"},
  };
  Bytes m = init.write_message(from_hex(msgs[0].payload));
  EXPECT_EQ(to_hex(m), msgs[0].ciphertext);
  EXPECT_EQ(to_hex(resp.read_message(m)), msgs[0].payload);
  m = resp.write_message(from_hex(msgs[1].payload));
  EXPECT_EQ(to_hex(m), msgs[1].ciphertext);
  EXPECT_EQ(to_hex(init.read_message(m)), msgs[1].payload);
  m = init.write_message(from_hex(msgs[2].payload));
  EXPECT_EQ(to_hex(m), msgs[2].ciphertext);
  EXPECT_EQ(to_hex(resp.read_message(m)), msgs[2].payload);
  ASSERT_TRUE(init.complete() && resp.complete());
  EXPECT_EQ(to_hex(init.handshake_hash()),
            "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e");
  auto [i_send, i_recv] = init.split();
  auto [r_send, r_recv] = resp.split();
  EXPECT_EQ(i_send, r_recv);
  NoiseCipher is(i_send), ir(i_recv), rs(r_send), rr(r_recv);
  // Transport messages go on alternating: the responder sends the fourth.
  for (int i = 3; i < 6; ++i) {
    NoiseCipher& tx = i % 2 == 1 ? rs : is;
    NoiseCipher& rx = i % 2 == 1 ? ir : rr;
    Bytes ct;
    tx.encrypt({}, from_hex(msgs[i].payload), ct);
    EXPECT_EQ(to_hex(ct), msgs[i].ciphertext) << "message " << i;
    EXPECT_EQ(to_hex(rx.decrypt({}, ct)), msgs[i].payload);
  }
}

TEST(Noise, TamperedMessageIsRefused) {
  NoiseXX init(NoiseXX::Role::kInitiator, X25519Key::generate());
  NoiseXX resp(NoiseXX::Role::kResponder, X25519Key::generate());
  resp.read_message(init.write_message({}));
  Bytes m2 = resp.write_message(as_bytes("hello"));
  m2[40] ^= 0x80;  // inside the encrypted static key
  EXPECT_THROW(init.read_message(m2), Error);
  EXPECT_THROW(NoiseXX(NoiseXX::Role::kInitiator, X25519Key::generate()).read_message(m2), Error);
}

TEST(Noise, Libp2pPayloadBindsIdentityToStaticKey) {
  Ed25519Key id = Ed25519Key::generate();
  X25519Key noise_static = X25519Key::generate();
  Bytes payload = make_noise_payload(id, noise_static.public_key);
  EXPECT_EQ(verify_noise_payload(payload, noise_static.public_key),
            PeerId::from_public_key(id.public_key));
  // The same payload presented with another static key: the signature no longer verifies.
  EXPECT_THROW(verify_noise_payload(payload, X25519Key::generate().public_key), Error);
  EXPECT_THROW(verify_noise_payload(from_hex("0a03010203"), noise_static.public_key), Error);
}

// https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md#test-vectors
TEST(PeerId, SpecEd25519Vector) {
  Bytes priv = from_hex(
      "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be"
      "8"
      "fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
  Ed25519Key k = decode_private_key(priv);
  EXPECT_EQ(to_hex(encode_public_key(k.public_key)),
            "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
  EXPECT_EQ(encode_private_key(k), priv);
  PeerId id = PeerId::from_public_key(k.public_key);
  EXPECT_EQ(id.str(), "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  EXPECT_EQ(PeerId::parse("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"), id);
  EXPECT_EQ(PeerId::parse("bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6"), id);
  EXPECT_EQ(id.inline_key(), k.public_key);
  // The spec's other key types are refused by name.
  EXPECT_THROW(decode_public_key(from_hex("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1"
                                          "a7a6fea0e630bfca99")),
               Error);
  EXPECT_THROW(PeerId::parse("12D3KooWnotapeer"), Error);
  EXPECT_THROW(PeerId::parse("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"), Error);
}

TEST(Multiaddr, TextAndBinary) {
  Multiaddr m = Multiaddr::parse("/ip4/127.0.0.1/tcp/4001");
  EXPECT_EQ(to_hex(m.bytes()), "047f000001060fa1");
  EXPECT_EQ(Multiaddr::from_bytes(m.bytes()).str(), "/ip4/127.0.0.1/tcp/4001");
  std::string full = "/ip4/10.1.2.3/tcp/1/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
  Multiaddr p = Multiaddr::parse(full);
  EXPECT_EQ(p.str(), full);
  EXPECT_EQ(Multiaddr::from_bytes(p.bytes()).str(), full);
  // a5 03 is the varint of the p2p code 0x01a5.
  EXPECT_NE(to_hex(p.bytes()).find("a503"), std::string::npos);
  EXPECT_EQ(Multiaddr::parse("/ip6/::1/tcp/80").str(), "/ip6/::1/tcp/80");
  EXPECT_EQ(Multiaddr::parse("/dns4/example.com/tcp/443").host(), "example.com");
  EXPECT_EQ(Multiaddr::parse("/ipfs/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq").str(),
            "/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  for (const char* bad :
       {"", "ip4/1.2.3.4", "/ip4/1.2.3", "/ip4/1.2.3.4/tcp/70000", "/ip4/1.2.3.4/udp/1", "/tcp/1",
        "/ip4/1.2.3.4/tcp/1/p2p/xyz", "/ip4/1.2.3.4/tcp"}) {
    EXPECT_THROW(Multiaddr::parse(bad), Error) << bad;
  }
  EXPECT_THROW(Multiaddr::from_bytes(from_hex("047f00")), Error);
  EXPECT_TRUE(names_peer(full));
  EXPECT_FALSE(names_peer("/ip4/127.0.0.1/tcp/5001"));
}

TEST(Frame, IncrementalAndBounded) {
  Bytes wire;
  put_frame(wire, as_bytes("hello"));
  put_frame(wire, Bytes(300, 7));
  FrameReader r(1000);
  for (uint8_t b : wire) r.feed(ByteView(&b, 1));
  auto f = r.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(as_string(*f), "hello");
  f = r.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size(), 300u);
  EXPECT_FALSE(r.next());
  FrameReader small(100);
  small.feed(wire);
  EXPECT_TRUE(small.next());
  EXPECT_THROW(small.next(), Error);  // 300 > 100, refused from the prefix alone
  FrameReader bad(100);
  bad.feed(Bytes(12, 0xff));
  EXPECT_THROW(bad.next(), Error);
}

TEST(Multistream, ListenerAndDialer) {
  Bytes wire;
  put_mss(wire, kMultistream);
  EXPECT_EQ(to_hex(wire), "132f6d756c746973747265616d2f312e302e300a");
  put_mss(wire, "/tls/1.0.0");
  put_mss(wire, "/noise");
  FrameReader frames(kMaxMssLine);
  frames.feed(wire);
  MssListener l([](std::string_view p) { return p == "/noise"; });
  Bytes reply;
  std::optional<std::string> chosen;
  while (auto f = frames.next()) chosen = l.on_frame(*f, reply);
  ASSERT_TRUE(chosen);
  EXPECT_EQ(*chosen, "/noise");
  Bytes expected;
  put_mss(expected, kMultistream);
  put_mss(expected, kNa);
  put_mss(expected, "/noise");
  EXPECT_EQ(reply, expected);
  EXPECT_EQ(to_hex(ByteView(expected).subspan(20, 4)), "036e610a");  // "na\n"

  MssDialer d("/noise");
  FrameReader back(kMaxMssLine);
  back.feed(expected);
  EXPECT_EQ(d.on_frame(*back.next()), MssDialer::Result::kMore);
  EXPECT_EQ(d.on_frame(*back.next()), MssDialer::Result::kRefused);
  EXPECT_EQ(d.on_frame(*back.next()), MssDialer::Result::kAccepted);

  MssListener strict([](std::string_view) { return false; });
  Bytes no_header;
  put_mss(no_header, "/noise");
  FrameReader nh(kMaxMssLine);
  nh.feed(no_header);
  EXPECT_THROW(strict.on_frame(*nh.next(), reply), Error);
  EXPECT_THROW(mss_line(as_bytes("no newline")), Error);
}

TEST(Multistream, ProposalsAreBounded) {
  MssListener l([](std::string_view) { return false; });
  Bytes reply, line;
  put_mss(line, kMultistream);
  l.on_frame(ByteView(line).subspan(1), reply);
  for (int i = 0; i < kMaxMssProposals; ++i) l.on_frame(as_bytes("/x\n"), reply);
  EXPECT_THROW(l.on_frame(as_bytes("/x\n"), reply), Error);
}

TEST(Yamux, HeaderCodec) {
  Bytes b;
  yamux::put_header(
      b, {yamux::Type::kWindowUpdate, yamux::kSyn | yamux::kFin, 0x01020304, 0xa0b0c0d0});
  EXPECT_EQ(to_hex(b),
            "000100050102030"
            "4a0b0c0d0");
  yamux::Header h = yamux::parse_header(b.data());
  EXPECT_EQ(h.type, yamux::Type::kWindowUpdate);
  EXPECT_TRUE(h.has(yamux::kSyn) && h.has(yamux::kFin) && !h.has(yamux::kRst));
  EXPECT_EQ(h.stream, 0x01020304u);
  EXPECT_EQ(h.length, 0xa0b0c0d0u);
  b[0] = 1;
  EXPECT_THROW(yamux::parse_header(b.data()), Error);
  b[0] = 0;
  b[1] = 4;
  EXPECT_THROW(yamux::parse_header(b.data()), Error);
}

TEST(Identify, RoundTripAndBounds) {
  IdentifyInfo info;
  info.public_key = encode_public_key(Ed25519Key::generate().public_key);
  info.listen_addrs.push_back(Multiaddr::parse("/ip4/127.0.0.1/tcp/4001").bytes());
  info.protocols = {"/ipfs/bitswap/1.2.0", "/ipfs/id/1.0.0"};
  info.agent_version = "cidrun/test";
  IdentifyInfo back = decode_identify(encode_identify(info));
  EXPECT_EQ(back.public_key, info.public_key);
  EXPECT_EQ(back.protocols, info.protocols);
  EXPECT_EQ(back.listen_addrs, info.listen_addrs);
  EXPECT_EQ(back.protocol_version, "ipfs/0.1.0");
  EXPECT_EQ(back.agent_version, "cidrun/test");
  IdentifyInfo many;
  for (int i = 0; i < 300; ++i) many.protocols.push_back("/p" + std::to_string(i));
  EXPECT_THROW(decode_identify(encode_identify(many)), Error);
}

}  // namespace
}  // namespace cidrun::p2p
