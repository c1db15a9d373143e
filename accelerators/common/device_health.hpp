// A device's health as the health call reports it, for plugins that track it per device.
#pragma once

#include <string>
#include <string_view>

namespace bai::accel {

enum class Health { Healthy, Unhealthy, Gone };  // in order of badness: a MIG slice takes the worse of it and its GPU

constexpr std::string_view healthName(Health health) {
  switch (health) {
    case Health::Healthy:
      return "healthy";
    case Health::Unhealthy:
      return "unhealthy";
    case Health::Gone:
      return "gone";
  }
  return "unhealthy";
}

struct HealthState {
  Health health = Health::Healthy;
  std::string reason;
};

}  // namespace bai::accel
