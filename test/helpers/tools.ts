/** Tool definitions the turn tests send (the stand-in calls them in the order given in `tools`). */

/** A tool without arguments: DashScope streams its call with `"arguments":""` or `"{}"`. */
export const TIME_TOOL = {
  type: "function",
  function: { name: "get_time", description: "The time now", parameters: { type: "object", properties: {} } },
};

/** A tool with one required argument. */
export const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather of a city",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};
