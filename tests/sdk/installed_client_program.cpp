// Built by sdk_install_test.sh against the installed headers and `pkg-config --libs bai`
// only, as a user's program would be: inline and template code of the public headers
// must link against the exported symbols alone. Prints what it computed; exits 1 on error.
#include <bai/client.hpp>
#include <bai/request_signing.hpp>
#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: installed_client_program CONFIG_FILE\n";
    return 2;
  }
  auto half = bai::Quantity::parse("0.5");
  auto memory = bai::BinarySize::parse("1.5g");
  auto slot = bai::SlotName::parse("cuda.shares");
  if (!half || !memory || !slot) return 1;
  const bai::Quantity sum = *half + *half - bai::Quantity(3);
  bai::ResourceSlot request{{*slot, *half}, {bai::SlotName::of("mem"), memory->toQuantity()}};
  const bai::ResourceSlot doubled = request + request;
  const bool fits = request <= doubled && !doubled.isZero();
  const bai::client::SlotUsage usage{"count", bai::Quantity(4), *half, *half};
  std::cout << "quantity " << sum.toString() << " " << (sum.isNegative() ? "negative" : "positive") << "\n"
            << "slots " << doubled.toJson() << " fits=" << fits << " device=" << slot->device() << "\n"
            << "available " << usage.available().toString() << " shown " << bai::client::formatSlotAmount("bytes", memory->toQuantity())
            << "\n"
            << "error " << bai::errorCodeName(bai::ErrorCode::Conflict) << "\n";

  auto config = bai::client::Config::load(argv[1]);
  if (!config) {
    std::cerr << config.error().message << "\n";
    return 1;
  }
  if (auto credentials = config->requireCredentials(); !credentials) return 1;
  std::cout << "endpoint " << config->endpoint << " key " << config->accessKey << "\n"
            << "signature " << bai::auth::hmacSha256Hex(config->secretKey, bai::auth::sha256Hex("")) << "\n";
  const bai::client::ApiError unreachable{0, "unreachable", "No answer", "connection refused"};
  std::cout << "message " << unreachable.message() << "\n";
  return 0;
}
