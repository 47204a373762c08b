import './base.css';
import './console.css';
import './modelsettings.css';
