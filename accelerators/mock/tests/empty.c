/* Deliberately empty: the baseline library for mock_timing's bare dlopen. */
