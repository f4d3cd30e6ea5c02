"""The API's routes, one blueprint per concern, each built fresh for every app."""
