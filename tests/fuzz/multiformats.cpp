// CIDs as text (command lines, URL paths, config files) and as bytes (dag-pb links, CAR
// sections), multibase strings and varints. Invariants: a CID that parses prints back to text
// that parses to the same CID, in every multibase it prints in; a binary CID spans exactly its
// bytes; a decoded multibase string re-encodes to the same bytes; a varint the strict decoder
// accepts is re-encoded byte for byte.
#include "fuzz.h"
#include "multiformats/cid.h"
#include "multiformats/multibase.h"
#include "util/error.h"
#include "util/varint.h"

using namespace cidrun;

namespace {

void cid_round_trips(const Cid& c) {
  FUZZ_CHECK(Cid::parse(c.str()) == c);
  FUZZ_CHECK(Cid::from_bytes(c.bytes()) == c);
  if (c.version() == 1) {
    for (char prefix : {'b', 'B', 'z', 'k', 'f'}) FUZZ_CHECK(Cid::parse(c.str(prefix)) == c);
  }
  size_t pos = 0;
  FUZZ_CHECK(Cid::read(c.bytes(), pos) == c && pos == c.bytes().size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::text_of(data, size);
  ByteView bytes = fuzz::bytes_of(data, size);
  try {
    cid_round_trips(Cid::parse(text));
  } catch (const Error&) {
  }
  try {
    Cid c = Cid::from_bytes(bytes);
    FUZZ_CHECK(fuzz::same(c.bytes(), bytes));
    cid_round_trips(c);
  } catch (const Error&) {
  }
  try {
    Bytes decoded = multibase::decode(text);
    char prefix = text[0];
    if (prefix == 'b' || prefix == 'B' || prefix == 'z' || prefix == 'k' || prefix == 'f') {
      FUZZ_CHECK(multibase::decode(multibase::encode(prefix, decoded)) == decoded);
    }
  } catch (const Error&) {
  }
  size_t pos = 0;
  if (auto v = get_varint(bytes, pos)) {
    Bytes again;
    put_varint(again, *v);
    FUZZ_CHECK(fuzz::same(again, bytes.first(pos)));
    FUZZ_CHECK(varint_size(*v) == pos);
  }
  return 0;
}
